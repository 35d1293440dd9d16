"""A simulated run with technicians: alerts resolved "no fault found" by the true state, as labels."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from benchmarks import findings
from fleet import labels
from fleet.tables import Alert
from models import episodes
from tests.models.findings_support import reviewed_run
from tests.models.fleet_support import REVIEW_FAST

# The SQLite and PostgreSQL cases (and reviews that start alike) train the same models: fitted once.
pytestmark = pytest.mark.usefixtures("trainings_once")


@pytest.mark.slow
def test_wrong_alerts_of_the_training_period_become_no_fault_labels_through_the_workflow(engine) -> None:
    run, split = reviewed_run()
    found = findings.review(run, run.telemetry(), split=split, review_days=25, engine=engine, **REVIEW_FAST)

    with engine.connect() as conn:
        stored = labels.read(conn)
        resolved = conn.execute(
            select(Alert.id, Alert.finding, Alert.finding_text)
            .where(Alert.status == "resolved")
            .order_by(Alert.id)
        ).all()
    assert found.no_fault_found >= 5 and found.visited <= found.alerts
    assert set(stored["source"]) == {"finding"} and set(stored["kind"]) <= {"no_fault", "visit"}
    for finding, kind in (("no_fault_found", "no_fault"), ("other", "visit")):
        refs = stored.loc[stored["kind"] == kind, "ref"]
        assert sorted(refs) == sorted(f"alert:{i}" for i, f, _ in resolved if f == finding)
    # A wrong alert on a machine whose wear was under way is resolved "other": a visit without finding.
    assert {(f, t) for _, f, t in resolved if f != "no_fault_found"} <= {("other", findings.WEAR_SEEN)}
    # Every finding is in the training period, on an alert whose machine did not fail within the horizon.
    nf = found.no_faults.sort_values(["machine", "ts"]).reset_index(drop=True)
    assert len(nf) == found.no_fault_found == int((stored["kind"] == "no_fault").sum())
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
