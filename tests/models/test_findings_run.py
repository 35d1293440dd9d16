"""A simulated run with technicians: alerts resolved "no fault found" by the true state, as labels."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from benchmarks import findings
from fleet import labels
from fleet.tables import Alert
from models import episodes
from simulators.config import FleetConfig
from simulators.engine import simulate
from tests.models.fleet_support import FAST


def test_wrong_alerts_of_the_training_period_become_no_fault_labels_through_the_workflow(engine) -> None:
    config = FleetConfig(machines=60, days=60, seed=7, step_seconds=3600)
    run = simulate(config)
    split = pd.Timestamp(config.start) + pd.Timedelta(days=45)
    found = findings.review(run, run.telemetry(), split=split, review_days=25, engine=engine, **FAST)

    with engine.connect() as conn:
        stored = labels.read(conn)
        resolved = conn.execute(
            select(Alert.id, Alert.finding).where(Alert.status == "resolved").order_by(Alert.id)
        ).all()
    assert found.no_fault_found >= 5 and found.visited <= found.alerts
    assert set(stored["source"]) == {"finding"} and set(stored["kind"]) == {"no_fault"}
    assert sorted(stored["ref"]) == sorted(f"alert:{i}" for i, _ in resolved)
    assert {f for _, f in resolved} == {"no_fault_found"}
    # Every finding is in the training period, on an alert whose machine did not fail within the horizon.
    nf = found.no_faults.sort_values(["machine", "ts"]).reset_index(drop=True)
    assert len(nf) == found.no_fault_found == len(stored)
    assert (nf["ts"] < split).all()
    alerts = pd.DataFrame({"machine": nf["machine"], "start": nf["ts"] - pd.Timedelta(hours=24)})
    assert not episodes.right_alerts(alerts, run.failures, run.maintenance, horizon_hours=168.0).any()
