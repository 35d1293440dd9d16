"""The OEM's warning and alarm limits of a type's sensors: which readings are beyond them, and in words.

A reading beyond the OEM's alarm limit (the machine builder's hard limit) is a risk of `ALARM_RISK`
whatever a model says; a cold-start model also alerts at the warning limit (`WARNING_RISK`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fleet.machine_types import SensorSpec

ALARM_RISK, WARNING_RISK = 1.0, 0.9
ALARM = (("alarm", ALARM_RISK),)
WARNING_AND_ALARM = (("warning", WARNING_RISK), ("alarm", ALARM_RISK))


def limits_of(specs: Mapping[str, SensorSpec]) -> dict[str, dict]:
    """The warning and alarm limits of sensor specs that give one, per sensor."""
    return {
        name: {"warning": s.warning, "alarm": s.alarm, "bad": s.bad or "high"}
        for name, s in specs.items()
        if s.warning is not None or s.alarm is not None
    }


def beyond(
    values: pd.DataFrame, limits: Mapping[str, dict], levels: tuple[tuple[str, float], ...] = ALARM
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the risk of the highest of `levels` a reading is beyond (0 if none), and that sensor."""
    risk = np.zeros(len(values))
    sensor = np.full(len(values), None, dtype=object)
    for name, limit in limits.items():
        if name not in values:
            continue
        x = values[name].to_numpy(dtype=float)
        sign = -1.0 if limit.get("bad") == "low" else 1.0
        for key, level in levels:
            if limit.get(key) is None:
                continue
            over = np.nan_to_num(sign * (x - float(limit[key])), nan=-1.0) >= 0
            sensor = np.where(over & (level > risk), name, sensor)
            risk = np.where(over, np.maximum(risk, level), risk)
    return risk, sensor


def level_of(risk: float) -> str:
    """The limit a risk from `beyond` stands for."""
    return "alarm" if risk >= ALARM_RISK else "warning"


def spec_of(specs: Mapping[str, SensorSpec], sensor: str) -> SensorSpec:
    """The type's spec of a sensor; one it does not describe is spelled out, without a unit."""
    return specs.get(sensor) or SensorSpec(name=sensor)


def phrase(sensor: str, value: float, level: str, limit: float, specs: Mapping[str, SensorSpec]) -> str:
    """E.g. 'vibration 8.3 mm/s, beyond the OEM alarm limit 7.1 mm/s'."""
    spec = spec_of(specs, sensor)
    return f"{spec.words} {spec.reading(value)}, beyond the OEM {level} limit {spec.reading(limit)}"
