"""The OEM's warning and alarm limits of a type's sensors: which readings are beyond them, and in words.

A reading beyond the OEM's alarm limit (the machine builder's hard limit) is a risk of `ALARM_RISK`
whatever a model says; a cold-start model also alerts at the warning limit (`WARNING_RISK`). A limit counts
once the machine's readings have stayed beyond it for the sensor's on-delay (ISA-18.2; `ON_DELAY_S` unless
the type gives `alarm_on_delay_s`): a single sample is not a process state (a spike of a faulty sensor).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fleet.machine_types import SensorSpec

ALARM_RISK, WARNING_RISK = 1.0, 0.9
ALARM = (("alarm", ALARM_RISK),)
WARNING_AND_ALARM = (("warning", WARNING_RISK), ("alarm", ALARM_RISK))
# ISA-18.2's and EEMUA 191's suggested on-delay for temperature and level; at most one reading per minute
# it asks for two readings in a row.
ON_DELAY_S = 60.0


def limits_of(specs: Mapping[str, SensorSpec]) -> dict[str, dict]:
    """The warning and alarm limits of sensor specs that give one, per sensor."""
    return {
        name: {
            "warning": s.warning,
            "alarm": s.alarm,
            "bad": s.bad or "high",
            "on_delay_s": ON_DELAY_S if s.alarm_on_delay_s is None else s.alarm_on_delay_s,
        }
        for name, s in specs.items()
        if s.warning is not None or s.alarm is not None
    }


def beyond(
    values: pd.DataFrame,
    limits: Mapping[str, dict],
    levels: tuple[tuple[str, float], ...] = ALARM,
    *,
    machine: str = "machine",
    ts: str = "ts",
    latest: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the risk of the highest of `levels` its machine's readings have held beyond for the on-delay
    (0 if none), that sensor and the seconds they have been beyond. A missing reading neither holds nor
    breaks a spell. With `latest`, one row per machine (sorted): each sensor at its latest reading."""
    keys, codes = np.unique(values[machine].astype(str).to_numpy(), return_inverse=True)
    t = pd.to_datetime(values[ts], utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9
    size = len(keys) if latest else len(values)
    risk, held = np.zeros(size), np.zeros(size)
    sensor = np.full(size, None, dtype=object)
    by_time = np.lexsort((t, codes))
    for name, limit in limits.items():
        if name not in values:
            continue
        x = values[name].to_numpy(dtype=float)
        order = by_time[~np.isnan(x[by_time])]
        if not len(order):  # not one reading of the sensor in the frame
            continue
        at = order[np.r_[codes[order][1:] != codes[order][:-1], True]] if latest else order
        sign = -1.0 if limit.get("bad") == "low" else 1.0
        delay = float(limit.get("on_delay_s", 0.0))
        for key, level in levels:
            if limit.get(key) is None:
                continue
            since = _spells(sign * (x - float(limit[key])) >= 0, codes, t, order)
            over = np.zeros(size, dtype=bool)
            span = np.zeros(size)
            rows = codes[at] if latest else at
            span[rows] = t[at] - since[at]
            over[rows] = ~np.isnan(since[at]) & (span[rows] >= delay)
            first = over & (level > risk)
            sensor = np.where(first, name, sensor)
            held = np.where(first, span, held)
            risk = np.where(over, np.maximum(risk, level), risk)
    return risk, sensor, held


def _spells(over: np.ndarray, codes: np.ndarray, t: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Per row in `order` (a machine's readings by time), when its spell beyond began (NaN if not beyond)."""
    since = np.full(len(over), np.nan)
    o, c = over[order], codes[order]
    start = np.r_[True, (o[1:] != o[:-1]) | (c[1:] != c[:-1])]
    began = t[order][start][np.cumsum(start) - 1]
    since[order] = np.where(o, began, np.nan)
    return since


def level_of(risk: float) -> str:
    """The limit a risk from `beyond` stands for."""
    return "alarm" if risk >= ALARM_RISK else "warning"


def spec_of(specs: Mapping[str, SensorSpec], sensor: str) -> SensorSpec:
    """The type's spec of a sensor; one it does not describe is spelled out, without a unit."""
    return specs.get(sensor) or SensorSpec(name=sensor)


def phrase(
    sensor: str, value: float, level: str, limit: float, specs: Mapping[str, SensorSpec], held_s: float = 0.0
) -> str:
    """E.g. 'vibration 8.3 mm/s, beyond the OEM alarm limit 7.1 mm/s for 3 h'."""
    spec = spec_of(specs, sensor)
    said = f"{spec.words} {spec.reading(value)}, beyond the OEM {level} limit {spec.reading(limit)}"
    return f"{said} for {_span(held_s)}" if held_s > 0 else said


def _span(seconds: float) -> str:
    """A time beyond a limit as a person reads it: '3 h', '25 min', '40 s'."""
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
