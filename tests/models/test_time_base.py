"""The time base places a machine's readings however few the scorer reads."""

from __future__ import annotations

import numpy as np

from models import time_base

HOUR_NS = 3600 * 10**9


def test_fewer_readings_than_the_rate_window_with_an_outage_are_placed() -> None:
    # The onboarding walkthrough's bp-003: hourly history, then its first live message 73 h later; the
    # scorer's window held 6 of its readings, fewer than the 9 the usual interval is judged over.
    t = np.array([0, 1, 2, 3, 4, 77]) * HOUR_NS
    grid = time_base.layout(np.zeros(6, dtype=np.int64), t, 1.0, 72.0)
    assert grid.slot.tolist() == [0, 1, 2, 3, 4, 77]
    assert grid.size == 78
