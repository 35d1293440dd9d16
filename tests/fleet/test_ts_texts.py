"""SQLite timestamp texts joined by a hot window's read come back as epoch milliseconds, rounded half up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.dialects import sqlite

from fleet import dialect

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_joined_texts_are_epoch_milliseconds_fixed_width_or_not():
    # Every 250.5 ms: odd steps land on a half millisecond, which goes up, as archived rows' times do
    # (SQLite's julianday, a float of days, is 20 us coarse there and rounded some halves down).
    times = [
        datetime(2026, 10, 1, tzinfo=UTC) + timedelta(minutes=i, microseconds=250_500 * i) for i in range(50)
    ]
    expected = [(t - EPOCH) // timedelta(microseconds=1) for t in times]
    expected = [(us + 500) // 1000 for us in expected]
    texts = [dialect.ts_param(t, sqlite.dialect()) for t in times]
    assert dialect.ms_of_texts(",".join(texts), len(texts)).tolist() == expected
    short = [t.removesuffix(".000000") for t in texts]  # another writer's text without the microseconds
    assert dialect.ms_of_texts(",".join(short), len(short)).tolist() == expected
    assert dialect.ms_of_texts("", 0).tolist() == []
