"""Technicians' alert visits in the simulated world: a visit during wear replaces the part, else nothing."""

from __future__ import annotations

import hashlib

import pandas as pd

from simulators import timeline
from simulators.config import FleetConfig
from simulators.engine import SimulationRun, simulate

CONFIG = FleetConfig(machines=30, days=60, seed=3, step_seconds=3600)
# The digest of this config's timeline as the code before visits existed drew it (seen on 3ec692b).
BEFORE_VISITS = "d3c2e23d7bfcbdba6be2b7919f1a55be7fc5e103b43ca38b09a9160f3f0f4578"


def _digest(run: SimulationRun) -> str:
    t = run._timeline
    body = repr(t.episodes) + repr(t.downtime) + run.failures.to_csv() + run.maintenance.to_csv()
    return hashlib.sha256(body.encode()).hexdigest()


def _worn_failure(run: SimulationRun) -> pd.Series:
    """A precursor failure whose wear began inside the run, and its machine's index."""
    f = run.failures[run.failures["has_precursor"] & (run.failures["onset"] > pd.Timestamp(CONFIG.start))]
    return f.iloc[0]


def test_without_visits_the_timeline_is_the_one_drawn_before_visits_existed() -> None:
    run = simulate(CONFIG)
    assert _digest(run) == BEFORE_VISITS
    assert _digest(run.with_visits({})) == BEFORE_VISITS
    assert run.repairs.empty and list(run.repairs.columns) == timeline.MAINTENANCE_COLUMNS


def test_a_visit_during_wear_replaces_the_part_so_the_machine_stops_for_maintenance_and_does_not_fail() -> (
    None
):
    run = simulate(CONFIG)
    failure = _worn_failure(run)
    m = int(run.machines.index[run.machines["machine"] == failure["machine"]][0])
    at = failure["onset"] + (failure["ts"] - failure["onset"]) / 2
    repaired = run.with_visits({failure["machine"]: [at]})

    step = pd.Timedelta(seconds=CONFIG.step_seconds)
    v_s = -(-(at - pd.Timestamp(CONFIG.start)) // step)  # the first step at or after the visit
    gone = repaired.failures[
        (repaired.failures["machine"] == failure["machine"]) & (repaired.failures["ts"] == failure["ts"])
    ]
    assert gone.empty
    (row,) = repaired.repairs.itertuples(index=False)
    assert (row.machine, row.kind, row.found_mode) == (
        failure["machine"],
        timeline.ALERT_REPAIR,
        failure["mode"],
    )
    assert row.ts == pd.Timestamp(CONFIG.start) + v_s * step
    assert timeline.Downtime(v_s, v_s + 4, timeline.MAINTENANCE) in repaired._timeline.downtime[m]
    ended = [e for e in repaired._timeline.episodes[m] if e.end == v_s]
    assert len(ended) == 1 and ended[0].onset <= v_s
    # The simulator's labels never hold the repair; everything before the visit is as it was.
    assert timeline.ALERT_REPAIR not in set(repaired.maintenance["kind"])
    for frame in ("failures", "maintenance"):
        old, new = getattr(run, frame), getattr(repaired, frame)
        pd.testing.assert_frame_equal(
            old[old["ts"] < at].reset_index(drop=True), new[new["ts"] < at].reset_index(drop=True)
        )
    other = [i for i in range(len(run.machines)) if i != m]
    assert [run._timeline.episodes[i] for i in other] == [repaired._timeline.episodes[i] for i in other]


def test_a_visit_with_no_wear_under_way_changes_nothing() -> None:
    run = simulate(CONFIG)
    failure = _worn_failure(run)
    at = failure["onset"] - pd.Timedelta(hours=1)  # healthy: the wear has not begun
    assert _digest(run.with_visits({failure["machine"]: [at]})) == BEFORE_VISITS
    assert run.with_visits({failure["machine"]: [at]}).repairs.empty


def test_a_repair_rewrites_the_machine_s_rows_as_a_fresh_simulation_of_that_world_gives_them() -> None:
    run = simulate(CONFIG)
    failure = _worn_failure(run)
    at = failure["onset"] + (failure["ts"] - failure["onset"]) / 2
    repaired = run.with_visits({failure["machine"]: [at]})
    panel = run.telemetry()
    repaired.refresh(panel, {failure["machine"]: at})
    pd.testing.assert_frame_equal(panel, repaired.telemetry())
    assert not panel.equals(run.telemetry())
