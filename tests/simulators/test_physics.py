"""Each failure mode moves its precursor sensors the right way before failure; failed machines go quiet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulators.config import FleetConfig
from simulators.engine import simulate
from simulators.machine_types import MACHINE_TYPES, Effect
from simulators.messages import iter_messages
from tests.simulators.helpers import sensor_frame

DAY = pd.Timedelta(hours=24)
CASES = [(t.name, m.name) for t in MACHINE_TYPES.values() for m in t.modes]


def _run(machine_type: str, mode: str):
    config = FleetConfig(
        machines=12,
        days=30,
        step_seconds=300,
        seed=7,
        failure_rate=25.0,
        sudden_share=0.0,
        fault_rate=0.0,
        bad_payload_rate=0.0,
        maintenance_interval_days=None,
        type_mix={machine_type: 1.0},
        modes=(mode,),
    )
    run = simulate(config)
    return run, run.telemetry()


def _is_precursor(machine_type: str, effect: Effect) -> bool:
    """Effects big enough to stand out from load and weather changes within a day's mean."""
    if effect.kind == "mul":
        return abs(effect.size) >= 0.2
    scale = next(s.scale for s in MACHINE_TYPES[machine_type].sensors if s.name == effect.sensor)
    return abs(effect.size) / scale >= 0.1


@pytest.mark.parametrize(("machine_type", "mode"), CASES)
def test_precursor_sensors_trend_before_failure(machine_type, mode):
    run, tel = _run(machine_type, mode)
    effects = [e for e in MACHINE_TYPES[machine_type].mode(mode).effects if _is_precursor(machine_type, e)]
    assert effects
    checked = 0
    for failure in run.failures.itertuples():
        assert failure.mode == mode and failure.has_precursor and failure.onset < failure.ts
        rows = tel[tel["machine"] == failure.machine]
        base = rows[(rows["ts"] >= failure.onset - DAY) & (rows["ts"] < failure.onset)]
        last = rows[(rows["ts"] >= failure.ts - DAY) & (rows["ts"] < failure.ts)]
        if failure.onset - DAY < run.config.start or (base["state"] != "running").any():
            continue  # no clean healthy day to compare with
        if machine_type == "cnc_spindle":  # compare cutting with cutting
            base, last = base[base["rpm"] > 0], last[last["rpm"] > 0]
        assert (last["state"] == "running").all() and len(base) > 20 and len(last) > 20
        for effect in effects:
            before, after = base[effect.sensor].mean(), last[effect.sensor].mean()
            expected = effect.size * (before if effect.kind == "mul" else 1.0)
            # Wear averages ≥ ~0.75 of the threshold over the last day; demand half of that.
            assert np.sign(after - before) == np.sign(expected), (failure.machine, effect, before, after)
            assert abs(after - before) >= 0.4 * abs(expected), (failure.machine, effect, before, after)
        checked += 1
    assert checked >= 3, f"only {checked} failures of {mode} had a clean baseline"


def test_failed_machine_reports_state_failed_without_readings_until_repaired():
    run, tel = _run("centrifugal_pump", "bearing_wear")
    assert len(run.failures) > 0
    step = pd.Timedelta(seconds=run.config.step_seconds)
    for failure in run.failures.itertuples():
        rows = tel[tel["machine"] == failure.machine].set_index("ts")
        down = rows[(rows.index >= failure.ts) & (rows.index < failure.repaired)]
        assert len(down) > 0 and (down["state"] == "failed").all()
        assert sensor_frame(down).isna().all().all()
        assert rows.loc[failure.ts - step, "state"] == "running"
        if failure.repaired in rows.index:
            assert rows.loc[failure.repaired, "state"] == "running"
    failed = run.failures.iloc[0]
    fail_seq = int((failed["ts"] - run.config.start) / step) + 1
    message = next(m for m in iter_messages(run) if m.machine == failed["machine"] and m.seq == fail_seq)
    assert b'"state":"failed"' in message.payload and b'"readings":{}' in message.payload


def test_preventive_maintenance_catches_degradation_and_resets_wear():
    base = dict(machines=40, days=60, seed=5, failure_rate=12.0, sudden_share=0.0, fault_rate=0.0)
    without = simulate(FleetConfig(**base, maintenance_interval_days=None))
    with_pm = simulate(FleetConfig(**base, maintenance_interval_days=7.0))
    preventive = with_pm.maintenance[with_pm.maintenance["kind"] == "preventive"]
    assert len(without.maintenance.query("kind == 'preventive'")) == 0
    assert preventive["found_mode"].notna().sum() > 0  # some visits found wear under way
    assert len(with_pm.failures) < 0.7 * len(without.failures)
    gaps = preventive.groupby("machine")["ts"].diff().dropna()
    assert ((gaps % pd.Timedelta(days=7)) == pd.Timedelta(0)).all()  # on the calendar, skipped when down
