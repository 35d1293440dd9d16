"""Ground truth: share of failures without precursor, and sensor faults never becoming failures."""

from __future__ import annotations

import pytest

from simulators.config import FleetConfig
from simulators.engine import simulate


@pytest.mark.parametrize("share", [0.25, 0.6])
def test_share_of_failures_without_precursor_matches_config(share):
    config = FleetConfig(
        machines=400, days=60, seed=3, failure_rate=20.0, sudden_share=share, maintenance_interval_days=None
    )
    failures = simulate(config).failures
    assert len(failures) > 600
    observed = 1.0 - failures["has_precursor"].mean()
    assert abs(observed - share) < 0.05, observed
    sudden = failures[~failures["has_precursor"]]
    assert sudden["onset"].isna().all() and failures[failures["has_precursor"]]["onset"].notna().all()
    assert (failures[failures["has_precursor"]]["onset"] < failures[failures["has_precursor"]]["ts"]).all()


def test_failure_rate_sets_how_many_failures_happen():
    base = dict(machines=200, days=60, seed=1, maintenance_interval_days=None)
    counts = [len(simulate(FleetConfig(**base, failure_rate=r)).failures) for r in (4.0, 16.0)]
    expected = [200 * 60 / 365.25 * r for r in (4.0, 16.0)]
    assert 0.6 * expected[0] < counts[0] < 1.2 * expected[0]
    assert 0.6 * expected[1] < counts[1] < 1.2 * expected[1]


def test_sensor_faults_never_create_failures():
    config = FleetConfig(machines=12, days=4, step_seconds=300, seed=9, failure_rate=0.0, fault_rate=6.0)
    run = simulate(config)
    assert len(run.sensor_faults) > 100 and set(run.sensor_faults["kind"]) == {
        "stuck", "drift", "dropout", "spike", "clock_skew",
    }  # fmt: skip
    assert run.failures.empty
    tel = run.telemetry()
    assert set(tel["state"]) <= {"running", "maintenance"}
    assert set(run.maintenance["kind"]) <= {"preventive"}
