"""A simulated run with technicians: alerts resolved "no fault found" by the true state, as labels."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from benchmarks import findings
from fleet import labels
from fleet.tables import Alert, ModelVersion, Prediction
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
            select(Alert.id, Alert.finding, Alert.finding_text)
            .where(Alert.status == "resolved")
            .order_by(Alert.id)
        ).all()
    assert found.no_fault_found >= 5 and found.visited <= found.alerts
    assert set(stored["source"]) == {"finding"} and set(stored["kind"]) == {"no_fault"}
    no_fault = [i for i, f, _ in resolved if f == "no_fault_found"]
    assert sorted(stored["ref"]) == sorted(f"alert:{i}" for i in no_fault)
    # A wrong alert on a machine whose wear was under way is resolved "other" and makes no label.
    assert {(f, t) for _, f, t in resolved if f != "no_fault_found"} <= {("other", findings.WEAR_SEEN)}
    # Every finding is in the training period, on an alert whose machine did not fail within the horizon.
    nf = found.no_faults.sort_values(["machine", "ts"]).reset_index(drop=True)
    assert len(nf) == found.no_fault_found == len(stored)
    assert (nf["ts"] < split).all()
    alerts = pd.DataFrame({"machine": nf["machine"], "start": nf["ts"] - pd.Timedelta(hours=24)})
    assert not episodes.right_alerts(alerts, run.failures, run.maintenance, horizon_hours=168.0).any()
    # No finding says "no fault" while a degradation was under way at the visit: a technician sees it.
    f = run.failures[run.failures["has_precursor"].astype(bool)]
    for machine, at in zip(nf["machine"], pd.to_datetime(nf["ts"], utc=True), strict=True):
        mine = f[f["machine"].astype(str) == str(machine)]
        onset, ts = pd.to_datetime(mine["onset"], utc=True), pd.to_datetime(mine["ts"], utc=True)
        assert not ((onset <= at) & (ts >= at)).any(), (machine, at)


def test_a_technician_sees_wear_under_way_and_finds_no_fault_only_without_it() -> None:
    at = pd.Timestamp("2026-01-10", tz="UTC")
    failures = pd.DataFrame(
        {
            "machine": ["a", "b", "c"],
            "ts": pd.to_datetime(["2026-01-19", "2026-01-19", "2026-01-09"], utc=True),
            "onset": pd.to_datetime(["2026-01-08", "2026-01-12", "2026-01-02"], utc=True),
            "has_precursor": [True, True, True],
        }
    )
    maintenance = pd.DataFrame(
        {
            "machine": ["d", "e"],
            "ts": pd.to_datetime(["2026-01-20", "2026-01-30"], utc=True),
            "found_mode": ["bearing_wear", "bearing_wear"],
        }
    )
    seen = {m: findings._wearing(m, at, failures, maintenance, horizon_hours=168.0) for m in "abcde"}
    # a: wear began before the visit, fails later; b: not begun yet; c: failed (and was repaired) before;
    # d: a visit finds wear within twice the horizon; e: only later than that.
    assert seen == {"a": True, "b": False, "c": False, "d": True, "e": False}


def test_paired_summary_gives_the_mean_difference_and_intervals_over_pairs() -> None:
    summary = findings.paired_summary([0.01, 0.03, 0.02, None, -0.01])

    assert (summary["pairs"], summary["improved"], summary["worse"]) == (4, 3, 1)
    assert abs(summary["mean"] - 0.0125) < 1e-12
    low, high = summary["t95"]
    # t with 3 degrees of freedom: 3.182 x sd 0.01708 / 2 on each side.
    assert abs(low - (0.0125 - 0.02718)) < 1e-4 and abs(high - (0.0125 + 0.02718)) < 1e-4
    b_low, b_high = summary["bootstrap95"]
    assert -0.01 <= b_low < summary["mean"] < b_high <= 0.03


def test_a_rolling_review_retrains_every_period_and_visits_no_alert_whose_horizon_crosses_the_split(
    engine,
) -> None:
    config = FleetConfig(machines=60, days=60, seed=7, step_seconds=3600)
    run = simulate(config)
    split = pd.Timestamp(config.start) + pd.Timedelta(days=45)
    found = findings.review(
        run, run.telemetry(), split=split, review_days=25, review_every=10, engine=engine, **FAST
    )

    with engine.connect() as conn:
        trained = conn.execute(
            select(
                ModelVersion.version, ModelVersion.machine_type, ModelVersion.train_end, ModelVersion.metrics
            )
        ).all()
        opened = conn.execute(
            select(Alert.status, Alert.finding, Prediction.ts, Prediction.model_version).join(
                Prediction, Prediction.id == Alert.first_prediction_id
            )
        ).all()
    # Review models trained on days 0-20, 0-30 and 0-40, each opening the alerts of the 10 days after it.
    ends = [split - pd.Timedelta(days=d) for d in (25, 15, 5)]
    types = run.telemetry()["machine_type"].nunique()
    assert found.review_models == 3 and len(trained) == 3 * types
    assert sorted({pd.Timestamp(e) for _, _, e, _ in trained}) == ends
    trained_end = {v: pd.Timestamp(e) for v, _, e, _ in trained}
    for _, _, ts, version in opened:
        assert trained_end[version] <= pd.Timestamp(ts) < trained_end[version] + pd.Timedelta(days=10)
    assert len({version for *_, version in opened}) > types
    # Each later model trained with the findings recorded before its training ended, and no others.
    nf_ts = pd.to_datetime(found.no_faults["ts"], utc=True)
    for _, mtype, end, metrics in trained:
        mine = nf_ts[(found.no_faults["machine_type"] == mtype).to_numpy()]
        assert metrics["no_faults"] == int((mine < pd.Timestamp(end)).sum())
    assert sum(m["no_faults"] for *_, m in trained) > 0
    # Only alerts whose 7-day horizon ends before the split are resolved; later ones stay open.
    horizon = pd.Timedelta(hours=168)
    assert found.no_fault_found == sum(f == "no_fault_found" for _, f, _, _ in opened) > 0
    for status, _, ts, _ in opened:
        assert (status == "resolved") <= (pd.Timestamp(ts) + horizon < split)
    assert any(pd.Timestamp(ts) + horizon >= split for _, _, ts, _ in opened)
    assert found.visited == sum(pd.Timestamp(ts) + horizon < split for _, _, ts, _ in opened)
