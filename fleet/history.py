"""Telemetry rows of any window, hot and archived as one: the read that rollups, export and charts share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, select

from fleet import archive
from fleet.tables import Telemetry

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
    """Rows of the telemetry table for these machines in [start, end), sorted by machine, time and seq."""
    t = Telemetry.__table__.c
    query = select(*(t[c] for c in ROW_COLUMNS)).where(t.machine_id.in_(list(machine_ids)))
    if start is not None:
        query = query.where(t.ts >= start)
    if end is not None:
        query = query.where(t.ts < end)
    if customer_id is not None:
        query = query.where(t.customer_id == customer_id)
    rows = conn.execute(query.order_by(t.machine_id, t.ts, t.seq)).all()
    if not rows:
        return empty()
    frame = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    for c in ("ts", "received_at"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    return frame


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
