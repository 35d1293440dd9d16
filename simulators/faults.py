"""Sensor faults that are not machine faults: stuck, drift, dropout, spikes and clock skew."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulators import randomness
from simulators.config import FleetConfig
from simulators.machine_types import MACHINE_TYPES

FAULT_KINDS = ("stuck", "drift", "dropout", "spike", "clock_skew")
# Duration range in hours per kind; a spike fault is a window holding a few one-step outliers.
_HOURS = {"stuck": (1.0, 12.0), "drift": (24.0, 120.0), "dropout": (0.1, 6.0), "spike": (1.0, 24.0)}
_HOURS["clock_skew"] = (1.0, 72.0)
FAULT_COLUMNS = ["tenant", "machine", "machine_type", "sensor", "kind", "start", "end", "magnitude"]


@dataclass(frozen=True, slots=True)
class SensorFault:
    """One fault episode on steps [start, end); magnitude is the drift at end, spike size or skew seconds."""

    kind: str
    sensor: str | None
    start: int
    end: int
    magnitude: float
    spikes: tuple[int, ...] = ()


def _draw(config: FleetConfig, m: int, mtype_name: str) -> list[SensorFault]:
    mtype = MACHINE_TYPES[mtype_name]
    rng = randomness.stream(config.seed, randomness.FAULTS, m)
    faults = []
    for _ in range(int(rng.poisson(config.fault_rate * config.steps / config.steps_per_day))):
        kind = FAULT_KINDS[int(rng.integers(len(FAULT_KINDS)))]
        sensor = mtype.sensors[int(rng.integers(len(mtype.sensors)))]
        start = int(rng.integers(config.steps))
        hours = rng.uniform(*_HOURS[kind])
        end = min(config.steps, start + max(1, round(hours * 3600.0 / config.step_seconds)))
        sign = 1.0 if rng.random() < 0.7 else -1.0
        size = rng.uniform(0.1, 0.3) if kind == "drift" else rng.uniform(0.5, 1.5)
        spikes: tuple[int, ...] = ()
        if kind == "clock_skew":
            faults.append(SensorFault(kind, None, start, end, sign * float(rng.uniform(30.0, 3600.0))))
            continue
        if kind == "spike":
            count = int(rng.integers(1, 6))
            spikes = tuple(sorted(int(s) for s in rng.integers(start, end, count)))
        magnitude = sign * size * sensor.scale if kind in ("drift", "spike") else 0.0
        faults.append(SensorFault(kind, sensor.name, start, end, magnitude, spikes))
    return faults


def draw_faults(config: FleetConfig, machines: pd.DataFrame) -> tuple[list[list[SensorFault]], pd.DataFrame]:
    """Every machine's sensor-fault episodes, and the same as a table with timestamps."""
    per_machine, rows = [], []
    start = pd.Timestamp(config.start)
    step = pd.Timedelta(seconds=config.step_seconds)
    for m, row in enumerate(machines.itertuples(index=False)):
        faults = _draw(config, m, row.machine_type) if config.fault_rate > 0 else []
        per_machine.append(faults)
        for f in faults:
            rows.append(
                (row.tenant, row.machine, row.machine_type, f.sensor, f.kind)
                + (start + f.start * step, start + f.end * step, f.magnitude)
            )
    table = pd.DataFrame(rows, columns=FAULT_COLUMNS)
    for col in ("start", "end"):
        table[col] = pd.to_datetime(table[col], utc=True)
    return per_machine, table


def apply_fault(
    fault: SensorFault,
    values: dict[str, np.ndarray],
    skew_s: np.ndarray,
    i: int,
    s0: int,
    stuck_value: Callable[[], float],
) -> None:
    """Apply one fault in place to row i of a block starting at step s0 (NaN readings stay NaN)."""
    n = skew_s.shape[1]
    a, b = max(fault.start, s0) - s0, min(fault.end, s0 + n) - s0
    if fault.kind == "spike":
        pos = [s - s0 for s in fault.spikes if s0 <= s < s0 + n]
        values[fault.sensor][i, pos] += fault.magnitude
        return
    if a >= b:
        return
    if fault.kind == "clock_skew":
        skew_s[i, a:b] = fault.magnitude
        return
    x = values[fault.sensor]
    if fault.kind == "dropout":
        x[i, a:b] = np.nan
    elif fault.kind == "stuck":
        frozen = stuck_value()
        if not np.isnan(frozen):  # stuck while the machine was down: nothing to freeze
            x[i, a:b] = np.where(np.isnan(x[i, a:b]), np.nan, frozen)
    elif fault.kind == "drift":
        ramp = (np.arange(a, b) + s0 - fault.start + 1) / (fault.end - fault.start)
        x[i, a:b] += fault.magnitude * ramp
