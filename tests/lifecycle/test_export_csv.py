"""The export's CSV writer gives pandas' text: byte for byte unless a text value needs quotes."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fleet import export_csv


def _floats(n: int, seed: int) -> np.ndarray:
    """Floats of every layout: tiny, huge, whole, rounded, full precision, signed zeros, inf, NaN."""
    rng = np.random.default_rng(seed)
    values = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-9, 22, n)
    values[::5] = np.round(values[::5], 2)
    values[1::7] = np.floor(values[1::7])
    values[:8] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-4, 1e10, 9999999999.5]
    return values


def _times(unit_ns: int, n: int) -> pd.Series:
    start = pd.Timestamp("2026-01-31 23:59:58", tz="UTC").value
    ticks = start + np.arange(n, dtype=np.int64) * 61 * 10**9 + (np.arange(n) % 3) * unit_ns
    times = pd.Series(pd.to_datetime(ticks, utc=True))
    times[3] = pd.NaT
    times[4] = pd.Timestamp("1969-12-31 23:59:58", tz="UTC") + pd.Timedelta(unit_ns, "ns")
    return times


def _frame(unit_ns: int, text: list, seed: int = 0) -> pd.DataFrame:
    n = len(text)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n, dtype=np.int64),
            "ts": _times(unit_ns, n),
            "fw": text,
            "empty": [None] * n,
            "readings.a": _floats(n, seed),
            "readings.b": np.round(_floats(n, seed + 1), 3),
        }
    )


@pytest.mark.parametrize("unit_ns", [10**9, 10**6, 10**3, 1])
def test_same_bytes_as_pandas(unit_ns):
    frame = _frame(unit_ns, ["1.2", None, "", "v2"] * 500, seed=unit_ns)
    ours = export_csv.write(pa.Table.from_pandas(frame, preserve_index=False))
    assert ours == frame.to_csv(index=False).encode()


def test_text_needing_quotes_reads_the_same():
    frame = _frame(10**3, ['{"state": "stopped"}', None, "a,b", "line\nbreak"] * 50)
    ours = export_csv.write(pa.Table.from_pandas(frame, preserve_index=False))
    theirs = frame.to_csv(index=False)
    assert ours != theirs.encode()
    assert list(csv.reader(io.StringIO(ours.decode()))) == list(csv.reader(io.StringIO(theirs)))


@pytest.mark.parametrize(
    "column",
    [
        [True, False, None],
        pd.to_datetime(["2026-01-01", "2026-01-02", None]),  # naive: pandas writes dates alone
        pd.to_datetime(["2026-01-01 00:00:00.0", "2026-01-02 00:00:00.5", None]).tz_localize("Europe/Berlin"),
    ],
)
def test_kinds_arrow_does_not_format_get_pandas_text(column):
    frame = pd.DataFrame({"x": column, "y": [1.5, 2.5, 3.5], "z": ["a", None, "b"]})
    assert (
        export_csv.write(pa.Table.from_pandas(frame, preserve_index=False))
        == frame.to_csv(index=False).encode()
    )
