"""Helpers for simulator tests: the sensor columns of a panel, the ingester's reason for each bad payload."""

from __future__ import annotations

import pandas as pd

from simulators.machine_types import SENSOR_COLUMNS

# The quarantine reason the ingester gives each kind of bad payload the simulator makes.
REASONS = {
    "malformed_json": "malformed_json",
    "reading_as_string": "wrong_type",
    "missing_seq": "missing_field",
    "missing_ts": "missing_field",
    "readings_not_object": "wrong_type",
}


def sensor_frame(panel: pd.DataFrame) -> pd.DataFrame:
    """Only the sensor columns of a panel."""
    return panel[list(SENSOR_COLUMNS)]
