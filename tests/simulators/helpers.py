"""Helpers for simulator tests: a strict reading of payload contract v1."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime

import pandas as pd

from simulators.machine_types import SENSOR_COLUMNS

TS_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def contract_problem(payload: bytes) -> str | None:
    """Why a payload breaks contract v1, or None when it meets it."""
    try:
        body = json.loads(payload)
    except ValueError:
        return "not json"
    if not isinstance(body, dict):
        return "not an object"
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return "seq missing or not an integer"
    ts = body.get("ts")
    if not isinstance(ts, str) or not TS_PATTERN.match(ts):
        return "ts missing or not ISO 8601 UTC with milliseconds"
    datetime.fromisoformat(ts)
    readings = body.get("readings")
    if not isinstance(readings, dict):
        return "readings not an object"
    for value in readings.values():
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            return "reading not a finite number"
    return None


def sensor_frame(panel: pd.DataFrame) -> pd.DataFrame:
    """Only the sensor columns of a panel."""
    return panel[list(SENSOR_COLUMNS)]
