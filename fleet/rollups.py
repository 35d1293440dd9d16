"""Telemetry rollups per machine and sensor: count, sum, min, max and last per minute, hour and day.

An insert trigger logs the (machine, hour) of every stored row in `rollup_dirty` (late and replayed rows
too; duplicates are not stored, so they log nothing). `refresh` recomputes those hours from the rows,
hot and archived, and their days from the hours: a recomputation, not an increment, so running it twice
or after a crash gives the same rollups. Minute rollups are kept only for hours where the raw rows are
finer than a minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, delete, insert, select, tuple_

from fleet import history
from fleet.tables import Rollup, RollupDirty

MINUTE, HOUR, DAY = 60, 3600, 86_400
MESSAGES = "*"  # the rollup "sensor" counting messages (sensor names are [A-Za-z0-9_]+)
WIDTHS = {"minute": MINUTE, "hour": HOUR, "day": DAY}
_STATS = ["n", "total", "lo", "hi", "last_ts", "last"]


def aggregate(frame: pd.DataFrame, width_s: int) -> pd.DataFrame:
    """Rollup rows of telemetry rows (`history.read_rows`) at one width: one per machine, sensor, bucket."""
    columns = ["machine_id", "customer_id", "sensor", "bucket", *_STATS]
    if not len(frame):
        return pd.DataFrame(columns=columns)
    wide = pd.DataFrame.from_records(frame["readings"].tolist(), index=frame.index)
    wide = wide.apply(pd.to_numeric, errors="coerce")
    wide[["machine_id", "customer_id", "ts", "seq"]] = frame[["machine_id", "customer_id", "ts", "seq"]]
    long = wide.melt(id_vars=["machine_id", "customer_id", "ts", "seq"], var_name="sensor").dropna(
        subset=["value"]
    )
    long["bucket"] = long["ts"].dt.floor(f"{width_s}s")
    long = long.sort_values(["machine_id", "sensor", "ts", "seq"], kind="stable")
    grouped = long.groupby(["machine_id", "customer_id", "sensor", "bucket"], sort=True)["value"]
    out = grouped.agg(n="count", total="sum", lo="min", hi="max", last="last").reset_index()
    out["last_ts"] = (
        long.groupby(["machine_id", "customer_id", "sensor", "bucket"], sort=True)["ts"].max().to_numpy()
    )
    messages = frame.assign(bucket=frame["ts"].dt.floor(f"{width_s}s"))
    keys = ["machine_id", "customer_id", "bucket"]
    counted = messages.groupby(keys, sort=True)["ts"].agg(n="count", last_ts="max").reset_index()
    counted = counted.assign(sensor=MESSAGES, total=None, lo=None, hi=None, last=None)
    return pd.concat([out[columns], counted[columns]], ignore_index=True)


def _combine(hours: pd.DataFrame, width_s: int) -> pd.DataFrame:
    """Rollups of a coarser width from finer rollup rows (sums of sums, the last of the latest)."""
    if not len(hours):
        return pd.DataFrame(columns=["machine_id", "customer_id", "sensor", "bucket", *_STATS])
    hours = hours.assign(bucket=hours["bucket"].dt.floor(f"{width_s}s")).sort_values("last_ts", kind="stable")
    grouped = hours.groupby(["machine_id", "customer_id", "sensor", "bucket"], sort=True)
    out = grouped.agg(
        n=("n", "sum"),
        total=("total", "sum"),
        lo=("lo", "min"),
        hi=("hi", "max"),
        last_ts=("last_ts", "max"),
        last=("last", "last"),
    )
    return out.reset_index()


def _utc(value) -> datetime:  # noqa: ANN001
    ts = pd.Timestamp(value)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()


def _records(frame: pd.DataFrame, width_s: int) -> list[dict]:
    frame = frame.assign(width_s=width_s)
    records = frame.to_dict("records")
    for r in records:
        r["bucket"], r["last_ts"] = _utc(r["bucket"]), _utc(r["last_ts"])
        r["n"] = int(r["n"])
        for key in ("total", "lo", "hi", "last"):
            r[key] = None if r[key] is None or not np.isfinite(float(r[key])) else float(r[key])
    return records


def _runs(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Consecutive hours merged into [start, end) spans."""
    spans: list[list[datetime]] = []
    for h in sorted(hours):
        if spans and spans[-1][1] == h:
            spans[-1][1] = h + timedelta(hours=1)
        else:
            spans.append([h, h + timedelta(hours=1)])
    return [(a, b) for a, b in spans]


def _replace(
    conn: Connection, machine_id: int, widths: Sequence[int], start: datetime, end: datetime
) -> None:
    r = Rollup.__table__.c
    conn.execute(
        delete(Rollup).where(
            r.machine_id == machine_id, r.width_s.in_(list(widths)), r.bucket >= start, r.bucket < end
        )
    )


def _refresh_machine(conn: Connection, machine_id: int, hours: list[datetime], archive_url: str) -> None:
    for start, end in _runs(hours):
        rows = history.read_rows(
            conn, machine_ids=[machine_id], start=start, end=end, archive_url=archive_url
        )
        hourly = aggregate(rows, HOUR)
        minutes = aggregate(rows, MINUTE)
        # Minute rollups only where the raw rows are finer than a minute: elsewhere they would copy them.
        finer = minutes.groupby(minutes["bucket"].dt.floor("3600s"))["n"].transform("max") > 1
        _replace(conn, machine_id, (MINUTE, HOUR), start, end)
        for frame, width in ((hourly, HOUR), (minutes[finer], MINUTE)):
            if len(frame):
                conn.execute(insert(Rollup), _records(frame, width))
    r = Rollup.__table__.c
    for day in sorted({datetime(h.year, h.month, h.day, tzinfo=UTC) for h in hours}):
        after = day + timedelta(days=1)
        query = select(*(r[c] for c in ("machine_id", "customer_id", "sensor", "bucket", *_STATS))).where(
            r.machine_id == machine_id, r.width_s == HOUR, r.bucket >= day, r.bucket < after
        )
        found = pd.DataFrame(
            conn.execute(query).all(), columns=["machine_id", "customer_id", "sensor", "bucket", *_STATS]
        )
        _replace(conn, machine_id, (DAY,), day, after)
        if len(found):
            found["bucket"] = pd.to_datetime(found["bucket"], utc=True)
            found["last_ts"] = pd.to_datetime(found["last_ts"], utc=True)
            conn.execute(insert(Rollup), _records(_combine(found, DAY), DAY))


def refresh(engine: Engine, *, archive_url: str, batch: int = 2000) -> int:
    """Recompute the rollups of every dirty hour, `batch` marks a transaction; returns hours refreshed."""
    done = 0
    while True:
        with engine.begin() as conn:
            marks = conn.execute(
                select(RollupDirty.machine_id, RollupDirty.hour)
                .order_by(RollupDirty.machine_id, RollupDirty.hour)
                .limit(batch)
            ).all()
            if not marks:
                return done
            # Deleted before the rows are read: an insert committing meanwhile logs its hour again.
            conn.execute(
                delete(RollupDirty).where(
                    tuple_(RollupDirty.machine_id, RollupDirty.hour).in_([tuple(m) for m in marks])
                )
            )
            by_machine: dict[int, list[datetime]] = {}
            for machine_id, hour in marks:
                by_machine.setdefault(machine_id, []).append(hour)
            for machine_id, hours in by_machine.items():
                _refresh_machine(conn, machine_id, hours, archive_url)
            done += len(marks)


def pending(conn: Connection, *, machine_id: int, start: datetime, end: datetime) -> list[datetime]:
    """Dirty hours of a machine that overlap [start, end): rollups there may lag the rows."""
    d = RollupDirty.__table__.c
    query = select(d.hour).where(
        d.machine_id == machine_id, d.hour > start - timedelta(hours=1), d.hour < end
    )
    return list(conn.scalars(query.order_by(d.hour)))


def read(
    conn: Connection, *, machine_ids: Sequence[int], width_s: int, start: datetime, end: datetime
) -> pd.DataFrame:
    """Rollup rows of these machines at one width with bucket in [start, end)."""
    r = Rollup.__table__.c
    query = (
        select(*(r[c] for c in ("machine_id", "sensor", "bucket", *_STATS)))
        .where(r.machine_id.in_(list(machine_ids)), r.width_s == width_s, r.bucket >= start, r.bucket < end)
        .order_by(r.machine_id, r.bucket, r.sensor)
    )
    frame = pd.DataFrame(conn.execute(query).all(), columns=["machine_id", "sensor", "bucket", *_STATS])
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    frame["last_ts"] = pd.to_datetime(frame["last_ts"], utc=True)
    frame["mean"] = frame["total"] / frame["n"]
    return frame
