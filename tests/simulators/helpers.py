"""Helpers for simulator tests: the sensor columns of a panel."""

from __future__ import annotations

import pandas as pd

from simulators.machine_types import SENSOR_COLUMNS


def sensor_frame(panel: pd.DataFrame) -> pd.DataFrame:
    """Only the sensor columns of a panel."""
    return panel[list(SENSOR_COLUMNS)]
