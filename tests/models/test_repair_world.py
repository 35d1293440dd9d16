"""The repair world: technicians' visits replace worn parts, and only their findings tell training."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks import repair_world
from fleet import labels
from models.training import ground_truth_by_id
from simulators import ground_truth, timeline
from simulators.registration import register_machines
from tests.models.findings_support import reviewed_run
from tests.models.fleet_support import REVIEW_FAST


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
    pd.testing.assert_frame_equal(found.panel, world.telemetry())
    pd.testing.assert_frame_equal(panel, run.telemetry())  # the caller's panel is left as it was

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
