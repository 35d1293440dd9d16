"""The telemetry route's bucket means written straight to bytes equal pydantic's dump of the same points."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from api import telemetry_view
from fleet import windows

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NAMES = ["flow", "temp", 'quote"d', "per%cent", "naïve", "tab\tbed", "back\\slash", "<b>"]


def _sums(start: datetime, width: timedelta, rows: int, seed: int, span: timedelta) -> windows.Sums:
    rng = random.Random(seed)
    first = (start - EPOCH) // timedelta(milliseconds=1)
    ms = np.array(sorted(first + rng.randrange(span // timedelta(milliseconds=1)) for _ in range(rows)))
    readings = []
    for _ in range(rows):
        values = {
            name: rng.choice([None, rng.uniform(-1e6, 1e6), rng.lognormvariate(0, 30)]) for name in NAMES
        }
        readings.append({k: v for k, v in values.items() if rng.random() < 0.8})
    sums = windows.Sums(start, width, scale=2.0**-11)
    sums.add_values(ms, readings)
    return sums


STARTS = [
    datetime(2026, 10, 1, tzinfo=UTC),
    datetime(2026, 10, 1, 0, 17, 30, 250_000, tzinfo=UTC),
    datetime(2026, 10, 1, 2, tzinfo=timezone(timedelta(hours=2))),
    datetime(2026, 3, 29, 1, 59, 59, 999_999, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
    datetime(1000, 1, 1, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, tzinfo=timezone(timedelta(seconds=37))),  # the plain way
]


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("width_ms", [300_000, 991_217, 1, 1_000])
def test_written_means_equal_pydantics_dump_byte_for_byte(start: datetime, width_ms: int) -> None:
    width = timedelta(milliseconds=width_ms)
    sums = _sums(start, width, rows=600, seed=width_ms, span=width * 200)
    head = {"machine_id": 7, "start": start, "end": start + width * 200, "rows": sums.rows}
    assert telemetry_view.means_json(head, sums) == telemetry_view._dumped(head, sums.points())


def test_rows_far_apart_are_bucketed_as_pandas_does() -> None:
    """Rows spread over many more buckets than rows take the sorting path; the means are the same."""
    start = datetime(2026, 10, 1, tzinfo=UTC)
    width = timedelta(milliseconds=1)
    ms = np.array([0, 5, 5, 10_000_000, 10_000_001, 99_999_999]) + (start - EPOCH) // width
    values = [1.0, 2.0, 4.0, 8.0, None, 16.0]
    sums = windows.Sums(start, width)
    sums.add_values(ms, [{"v": v} for v in values])
    frame = pd.DataFrame({"b": ms - ms[0], "v": values}).astype(float)
    expected = frame.groupby("b")["v"].mean()
    got = sums.points()
    assert [(ts - start) // width for ts, _ in got] == expected.index.astype(int).tolist()
    assert [p["v"] for _, p in got] == [None if np.isnan(v) else v for v in expected]
