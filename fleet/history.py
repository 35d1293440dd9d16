"""Telemetry rows of any window, hot and archived as one: the read that rollups, export and charts share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Connection, text

from fleet import archive, dialect

ROW_COLUMNS = ("customer_id", "machine_id", "seq", "ts", "readings", "fw", "extra", "received_at")


def empty() -> pd.DataFrame:
    """A frame of no telemetry rows, with the columns `read_rows` gives."""
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in ROW_COLUMNS})
    for c in ("customer_id", "machine_id", "seq"):
        frame[c] = frame[c].astype("int64")
    for c in ("ts", "received_at"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    return frame


def read_hot(
    conn: Connection,
    *,
    machine_ids: Sequence[int],
    start: datetime | None = None,
    end: datetime | None = None,
    customer_id: int | None = None,
) -> pd.DataFrame:
    """Rows of the telemetry table for these machines in [start, end), sorted by machine, time and seq.

    Below SQLAlchemy's per-value types: JSON and timestamps are decoded a column at a time.
    """
    d = conn.dialect
    where = [f"machine_id IN ({','.join(str(int(m)) for m in machine_ids) or 'NULL'})"]
    params: dict = {}
    if start is not None:
        where.append("ts >= :start")
        params["start"] = dialect.ts_param(start, d)
    if end is not None:
        where.append("ts < :end")
        params["end"] = dialect.ts_param(end, d)
    if customer_id is not None:
        where.append("customer_id = :customer")
        params["customer"] = int(customer_id)
    # Below psycopg's types too: its datetimes and stdlib-json JSONB made this read 3.8x slower (88k rows).
    cast = {"readings": dialect.json_as_text, "extra": dialect.json_as_text}
    cast |= {"ts": dialect.epoch_us, "received_at": dialect.epoch_us}
    names = (f"{cast[c](c, d)} AS {c}" if c in cast else c for c in ROW_COLUMNS)
    sql = (
        f"SELECT {', '.join(names)} FROM telemetry WHERE {' AND '.join(where)} "
        "ORDER BY telemetry.machine_id, telemetry.ts, telemetry.seq"  # the stored ts, not the output's
    )
    rows = conn.execute(
        text(sql), params
    ).cursor.fetchall()  # driver tuples: Row objects cost pandas a lookup each
    if not rows:
        return empty()
    columns = dict(zip(ROW_COLUMNS, zip(*rows, strict=True), strict=True))
    frame = pd.DataFrame(
        {
            "customer_id": np.array(columns["customer_id"], dtype=np.int64),
            "machine_id": np.array(columns["machine_id"], dtype=np.int64),
            "seq": np.array(columns["seq"], dtype=np.int64),
            "ts": timestamps(columns["ts"]),
            "readings": _json(columns["readings"]),
            "fw": list(columns["fw"]),
            "extra": _json(columns["extra"]),
            "received_at": timestamps(columns["received_at"]),
        }
    )
    return frame


def timestamps(values: tuple) -> pd.DatetimeIndex:
    """SQLite's naive UTC text, epoch microseconds or aware datetimes, as one UTC column."""
    if values and isinstance(values[0], str):
        return pd.to_datetime(values, format="ISO8601", utc=True)
    if values and isinstance(values[0], int):
        return pd.to_datetime(np.array(values, dtype=np.int64), unit="us", utc=True)
    return pd.to_datetime(list(values), utc=True)


def _json(values: tuple) -> list:
    """SQLite's JSON text (or PostgreSQL's decoded JSONB) as Python objects."""
    return [orjson.loads(v) if isinstance(v, str | bytes) else v for v in values]


def read_rows(
    conn: Connection,
    *,
    machine_ids: Sequence[int],
    start: datetime | None = None,
    end: datetime | None = None,
    archive_url: str,
) -> pd.DataFrame:
    """Rows of these machines in [start, end) from the hot table and the archive, each key once.

    The hot table is read first: a move committed between the two reads then shows its rows twice (once
    per side), never not at all, and the duplicates are dropped by key.
    """
    hot = read_hot(conn, machine_ids=machine_ids, start=start, end=end)
    cold = archive.read(conn, url=archive_url, machine_ids=machine_ids, start=start, end=end)
    if not len(cold):
        return hot
    both = pd.concat([x for x in (hot, cold) if len(x)], ignore_index=True)
    both = both.drop_duplicates(["machine_id", "seq"]).sort_values(["machine_id", "ts", "seq"], kind="stable")
    return both.reset_index(drop=True)
