"""Each sensor fault does what it says, only inside its window, compared with a fault-free twin."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulators.config import FleetConfig
from simulators.engine import simulate

BASE = dict(machines=16, days=3, step_seconds=300, seed=21, failure_rate=0.0, maintenance_interval_days=None)


def _pair():
    faulty = simulate(FleetConfig(**BASE, fault_rate=3.0))
    clean = simulate(FleetConfig(**BASE, fault_rate=0.0))
    return faulty, faulty.telemetry(), clean.telemetry()


def _window(run, panel: pd.DataFrame, fault) -> np.ndarray:
    """Rows of the fault's machine within its steps [start, end) (seq is step + 1)."""
    step = pd.Timedelta(seconds=run.config.step_seconds)
    first, end = (fault.start - run.config.start) // step, (fault.end - run.config.start) // step
    seq = panel["seq"]
    return ((panel["machine"] == fault.machine) & (seq > first) & (seq <= end)).to_numpy()


def _isolated(faults: pd.DataFrame) -> pd.DataFrame:
    """Faults overlapping no other fault on the same machine and sensor, so their effect reads alone."""
    keep = []
    for f in faults.itertuples():
        same = faults[(faults["machine"] == f.machine) & (faults.index != f.Index)]
        same = same[same["sensor"].isna()] if pd.isna(f.sensor) else same[same["sensor"] == f.sensor]
        keep.append(not ((same["start"] < f.end) & (same["end"] > f.start)).any())
    return faults[keep]


def test_faults_change_readings_only_inside_their_windows():
    run, faulty, clean = _pair()
    assert len(run.sensor_faults) > 30
    inside = np.zeros(len(faulty), dtype=bool)
    for f in run.sensor_faults.itertuples():
        inside |= _window(run, faulty, f)
    assert (~inside).sum() > 0.2 * len(faulty)
    pd.testing.assert_frame_equal(faulty[~inside], clean[~inside])
    assert not faulty[inside].equals(clean[inside])


def test_each_fault_kind_has_its_signature():
    run, faulty, clean = _pair()
    seen = set()
    for f in _isolated(run.sensor_faults).itertuples():
        window = _window(run, faulty, f)
        got, ref = faulty[window], clean[window]
        if f.kind == "clock_skew":
            skew = (got["ts"] - ref["ts"]).dt.total_seconds()
            assert np.allclose(skew, round(f.magnitude, 3))
            assert (got["seq"].to_numpy() == ref["seq"].to_numpy()).all()
        elif f.kind == "dropout":
            assert got[f.sensor].isna().all() and ref[f.sensor].notna().all()
        elif f.kind == "stuck":
            assert got[f.sensor].nunique() == 1
            assert len(got) < 4 or ref[f.sensor].nunique() > 1
        elif f.kind == "drift":
            delta = (got[f.sensor] - ref[f.sensor]).to_numpy()
            moved = delta[delta != 0]
            assert len(moved) > 0 and (np.sign(moved) == np.sign(f.magnitude)).all()
            assert abs(delta).max() >= abs(delta[0])
        elif f.kind == "spike":
            assert 1 <= (got[f.sensor] != ref[f.sensor]).sum() <= 5
        seen.add(f.kind)
    assert seen == {"stuck", "drift", "dropout", "spike", "clock_skew"}


def test_ts_bound_is_the_last_step_or_later_by_a_clock_running_ahead():
    run, faulty, clean = _pair()
    last = pd.Timestamp(run.config.start) + pd.Timedelta(
        seconds=(run.config.steps - 1) * run.config.step_seconds
    )
    assert clean["ts"].max() == simulate(FleetConfig(**BASE, fault_rate=0.0)).ts_bound() == last
    assert faulty["ts"].max() <= run.ts_bound()
    assert faulty["ts"].max() > last  # a clock runs ahead at some step late enough to pass the last one
