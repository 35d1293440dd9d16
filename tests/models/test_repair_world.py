"""The repair world: technicians' visits replace worn parts, and only their findings tell training."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from benchmarks import repair_world
from fleet import labels
from fleet.tables import Alert, ModelVersion, Prediction
from models.training import ground_truth_by_id
from simulators import ground_truth, timeline
from simulators.registration import register_machines
from tests.models.findings_support import reviewed_run
from tests.models.fleet_support import REVIEW_FAST

# Reviews that start alike train the same first models: fitted once (training is deterministic).
pytestmark = pytest.mark.usefixtures("trainings_once")


@pytest.mark.slow
def test_a_review_in_the_repair_world_replaces_worn_parts_and_reports_them_only_as_findings(
    sqlite_engine,
) -> None:
    run, split = reviewed_run()
    panel = run.telemetry()
    found = repair_world.review(run, panel, split=split, review_days=25, engine=sqlite_engine, **REVIEW_FAST)
    world = found.world

    # Repairs happened: each ended a wear episode whose failure the world without visits has.
    assert len(world.repairs) >= 3 and len(world.failures) < len(run.failures)
    assert set(world.repairs["kind"]) == {timeline.ALERT_REPAIR}
    assert found.visited <= found.alerts and len(found.no_faults) >= 5
    # Exact: pandas compares categoricals value by value otherwise, 1.5 CPU-s a panel.
    pd.testing.assert_frame_equal(found.panel, world.telemetry(), check_exact=True)
    pd.testing.assert_frame_equal(panel, run.telemetry(), check_exact=True)  # the caller's, left as it was

    # Every repair is a "replaced before failure" finding at the visit, naming the mode found.
    with sqlite_engine.connect() as conn:
        stored = labels.read(conn)
    assert set(stored["source"]) == {"finding"} and set(stored["kind"]) == {"no_fault", "replacement"}
    replaced = found.replaced.sort_values(["machine", "ts"]).reset_index(drop=True)
    repairs = world.repairs.sort_values(["machine", "ts"]).reset_index(drop=True)
    assert list(replaced["machine"]) == list(repairs["machine"].astype(str))
    assert list(replaced["found_mode"]) == list(repairs["found_mode"])
    lag = pd.to_datetime(repairs["ts"], utc=True) - pd.to_datetime(replaced["ts"], utc=True)
    assert ((lag >= pd.Timedelta(0)) & (lag < pd.Timedelta(hours=1))).all()
    for frame in (found.no_faults, found.replaced):
        assert (pd.to_datetime(frame["ts"], utc=True) < split - pd.Timedelta(days=6)).all()

    # No "no fault found" while wear was under way in the world at the visit.
    f = world.failures[world.failures["has_precursor"].astype(bool)]
    for machine, at in zip(
        found.no_faults["machine"], pd.to_datetime(found.no_faults["ts"], utc=True), strict=True
    ):
        mine = f[f["machine"].astype(str) == machine]
        assert not ((mine["onset"] <= at) & (mine["ts"] >= at)).any(), (machine, at)

    # The simulator's labels of that world hold no repair; the findings training reads do.
    ids = register_machines(engine=sqlite_engine, machines=world.machines)
    ground_truth.write_run(sqlite_engine, world, ids)
    read = ground_truth_by_id(sqlite_engine)
    names = {str(m): code for (_, code), (_, m) in ids.items()}
    visits = read.maintenance.assign(machine=read.maintenance["machine"].map(names))
    assert timeline.ALERT_REPAIR not in set(visits["kind"]) and "preventive" in set(visits["kind"])
    found_rows = visits[visits["kind"] == "replacement"].sort_values(["machine", "ts"]).reset_index(drop=True)
    assert list(found_rows["machine"]) == list(replaced["machine"])
    assert list(found_rows["found_mode"]) == list(replaced["found_mode"])


def test_slots_give_a_fleet_its_capacity_in_whole_visits_without_carrying_unused_ones() -> None:
    start = pd.Timestamp("2026-01-01", tz="UTC")
    days = [start + pd.Timedelta(days=d) for d in range(31)]
    daily = [repair_world.slots(20, 1.5, start, a, b) for a, b in zip(days, days[1:], strict=False)]
    assert sum(daily) == 30 and set(daily) == {1} and len(daily) == 30  # 20 machines × 1.5 a month
    daily = [repair_world.slots(8, 0.5, start, a, b) for a, b in zip(days, days[1:], strict=False)]
    assert sum(daily) == 4 and set(daily) == {0, 1}  # one visit every 7.5 days
    assert repair_world.slots(8, 0.5, start, days[3], days[11]) == 1  # 8 days: the slot of day 7.5 only


@pytest.mark.slow
def test_a_review_with_a_capacity_visits_the_highest_risks_whatever_the_review_models_threshold(
    sqlite_engine,
) -> None:
    run, split = reviewed_run()
    panel = run.telemetry()
    review = {"review_days": 25, "capacity": 2.0}
    loose = repair_world.review(run, panel, split=split, engine=sqlite_engine, **review, **REVIEW_FAST)
    strict_params = {**REVIEW_FAST, "max_false_alarms": 0.0}
    strict = repair_world.review(run, panel, split=split, **review, **strict_params)
    # Without a capacity the strict review models' threshold opens no alert at all on this run.
    assert repair_world.review(run, panel, split=split, review_days=25, **strict_params).alerts == 0

    # The same visits and findings, whichever threshold the review models chose.
    assert (loose.alerts, loose.visited) == (strict.alerts, strict.visited)
    assert loose.visited >= 20 and len(loose.no_faults) >= 10
    pd.testing.assert_frame_equal(loose.no_faults, strict.no_faults)
    pd.testing.assert_frame_equal(loose.replaced, strict.replaced)

    # Each day a type's alerts open on at most its slots, on the machines whose risk peaked highest.
    start = split - pd.Timedelta(days=25)
    with sqlite_engine.connect() as conn:
        opened = pd.read_sql(
            select(Alert.machine_id, Prediction.ts, ModelVersion.machine_type)
            .join(Prediction, Prediction.id == Alert.first_prediction_id)
            .join(ModelVersion, ModelVersion.version == Prediction.model_version),
            conn,
        )
    opened["day"] = (pd.to_datetime(opened["ts"], utc=True) - start) // pd.Timedelta(days=1)
    machines = panel.groupby("machine_type")["machine"].nunique()
    for (mtype, day), n in opened.groupby(["machine_type", "day"]).size().items():
        at = start + pd.Timedelta(days=int(day))
        assert n <= repair_world.slots(int(machines[mtype]), 2.0, start, at, at + pd.Timedelta(days=1))
    assert len(opened) == loose.alerts
