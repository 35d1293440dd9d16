"""Telemetry rollups per machine and sensor: count, sum, min, max and last per minute, hour and day.

An insert trigger logs the (machine, hour) of every stored row in `rollup_dirty` (late and replayed rows
too; duplicates are not stored, so they log nothing). `refresh` recomputes those hours from the rows,
hot and archived, and their days from the hours: a recomputation, not an increment, so running it twice
or after a crash gives the same rollups. Minute rollups are kept only for hours where the raw rows are
finer than a minute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, tuple_

from fleet import dialect, history, progress
from fleet.db import for_writing, give_way
from fleet.tables import Rollup, RollupDirty

MINUTE, HOUR, DAY = 60, 3600, 86_400
FINER_ROWS_PER_HOUR = 120
# Refresh batches run one at a time (PostgreSQL; SQLite's write lock does it there): two at once, each
# recomputing a day the other has hours of, insert its rollup twice. migrate: 7_214_001, partitions: _002.
REFRESH_LOCK = 7_214_003
MESSAGES = "*"  # the rollup "sensor" counting messages (sensor names are [A-Za-z0-9_]+)
WIDTHS = {"minute": MINUTE, "hour": HOUR, "day": DAY}
_STATS = ["n", "total", "lo", "hi", "last_ts", "last"]
_MARK = tuple_(RollupDirty.machine_id, RollupDirty.hour)
Marks = dict[int, list[datetime]]  # machine id → marked (dirty) hours
Horizons = Mapping[int, datetime]  # width → oldest bucket retention keeps


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


def _replace(conn: Connection, width_s: int, spans: list[tuple[int, datetime, datetime]]) -> None:
    """Delete rollups of one width in these (machine, start, end) spans."""
    r = Rollup.__table__.c
    stmt = delete(Rollup).where(
        r.machine_id == bindparam("m"),
        r.width_s == width_s,
        r.bucket >= bindparam("a"),
        r.bucket < bindparam("b"),
    )
    conn.execute(stmt, [{"m": m, "a": a, "b": b} for m, a, b in spans])


def _insert(conn: Connection, frame: pd.DataFrame, width_s: int) -> None:
    if len(frame):
        conn.execute(insert(Rollup), _records(frame, width_s))


def _rows(conn: Connection, marks: Marks, archive_url: str) -> pd.DataFrame:
    """Rows of the marked hours: one read per distinct span (steady state: every machine, the same hour)."""
    by_span: dict[tuple[datetime, datetime], list[int]] = {}
    for machine_id, hours in marks.items():
        by_span.setdefault((min(hours), max(hours) + timedelta(hours=1)), []).append(machine_id)
    frames = [
        history.read_rows(conn, machine_ids=ids, start=a, end=b, archive_url=archive_url)
        for (a, b), ids in by_span.items()
    ]
    rows = pd.concat([f for f in frames if len(f)] or [history.empty()], ignore_index=True)
    keep = _keys(rows["machine_id"], rows["ts"].dt.floor("3600s")).isin(_marked(marks))
    return rows[keep].reset_index(drop=True)


def _keys(machine_ids, times) -> pd.MultiIndex:  # noqa: ANN001
    return pd.MultiIndex.from_arrays([np.asarray(machine_ids, dtype=np.int64), pd.DatetimeIndex(times)])


def _marked(marks: Marks) -> pd.MultiIndex:
    pairs = [(m, h) for m, hours in marks.items() for h in hours]
    return _keys([m for m, _ in pairs], pd.to_datetime([h for _, h in pairs], utc=True))


def _past(horizons: Horizons, width_s: int, bucket: datetime) -> bool:
    """Whether retention deletes a rollup of this width and bucket (`horizons`: width → oldest kept)."""
    cutoff = horizons.get(width_s)
    return cutoff is not None and bucket < cutoff


def _kept_somewhere(horizons: Horizons, hour: datetime) -> bool:
    """Whether retention keeps any of the hour's buckets (its last minute, the hour, its day): an hour whose
    every bucket it deletes anyway is not computed."""
    return (
        not _past(horizons, MINUTE, hour + timedelta(seconds=HOUR - MINUTE))
        or not _past(horizons, HOUR, hour)
        or not _past(horizons, DAY, _day(hour))
    )


def _day(hour: datetime) -> datetime:
    return datetime(hour.year, hour.month, hour.day, tzinfo=UTC)


def _older_hours(marks: Marks, horizons: Horizons) -> Marks:
    """Unmarked hours past the hour horizon in the kept days of the marks: their days need their rows."""
    out: dict[int, list[datetime]] = {}
    for m, hours in marks.items():
        for d in sorted({_day(h) for h in hours if not _past(horizons, DAY, _day(h))}):
            old = [d + timedelta(hours=i) for i in range(24)]
            old = [h for h in old if _past(horizons, HOUR, h) and h not in hours]
            if old:
                out.setdefault(m, []).extend(old)
    return out


def _refresh_batch(conn: Connection, marks: Marks, archive_url: str, horizons: Horizons) -> None:
    """The rollups of the marked hours and of their days, recomputed from the rows."""
    _delete_marked(conn, marks)
    live = _live(marks, horizons)
    if not live:
        return
    rows = _rows(conn, live, archive_url)
    past_hours = _refresh_hours(conn, rows, live, archive_url, horizons)
    _refresh_minutes(conn, rows, horizons)
    _refresh_days(conn, live, past_hours, horizons)


def _delete_marked(conn: Connection, marks: Marks) -> None:
    """Delete the rollups of every width in the marked hours, and those of their days."""
    spans = [(m, a, b) for m, hours in marks.items() for a, b in _runs(hours)]
    days = {(m, _day(h)) for m, hours in marks.items() for h in hours}
    _replace(conn, HOUR, spans)
    _replace(conn, MINUTE, spans)
    _replace(conn, DAY, [(m, d, d + timedelta(days=1)) for m, d in sorted(days)])


def _live(marks: Marks, horizons: Horizons) -> Marks:
    """The marked hours retention keeps a bucket of, by machine; machines with none are left out."""
    live = {m: [h for h in hours if _kept_somewhere(horizons, h)] for m, hours in marks.items()}
    return {m: hours for m, hours in live.items() if hours}


def _refresh_hours(
    conn: Connection, rows: pd.DataFrame, live: Marks, archive_url: str, horizons: Horizons
) -> pd.DataFrame:
    """Insert the hour rollups of `rows` within the hour horizon; returns those past it, their days' input.

    The hours past it are aggregated with the unmarked ones of their kept days (`_older_hours`).
    """
    older = _older_hours(live, horizons)
    hourly = aggregate(pd.concat([rows, _rows(conn, older, archive_url)]) if older else rows, HOUR)
    kept = hourly["bucket"] >= horizons[HOUR] if HOUR in horizons else np.ones(len(hourly), dtype=bool)
    _insert(conn, hourly[kept], HOUR)
    return hourly[~kept]


def _refresh_minutes(conn: Connection, rows: pd.DataFrame, horizons: Horizons) -> None:
    """Insert the minute rollups within the minute horizon of the hours with finer rows than a minute."""
    # Minute rollups only for hours with at least two rows a minute: elsewhere they would copy the rows.
    per_hour = rows.groupby([rows["machine_id"], rows["ts"].dt.floor("3600s")])["seq"].transform("size")
    if (per_hour >= FINER_ROWS_PER_HOUR).any():
        minutes = aggregate(rows[per_hour >= FINER_ROWS_PER_HOUR], MINUTE)
        _insert(conn, minutes[minutes["bucket"] >= horizons.get(MINUTE, minutes["bucket"].min())], MINUTE)


def _refresh_days(conn: Connection, live: Marks, past_hours: pd.DataFrame, horizons: Horizons) -> None:
    """Insert the day rollups of the live hours' kept days, combined from their hour rollups."""
    days = {(m, _day(h)) for m, hours in live.items() for h in hours if not _past(horizons, DAY, _day(h))}
    if not days:
        return
    found = _day_hours(conn, list(live), days, past_hours, horizons)
    if len(found):
        touched = _keys([m for m, _ in days], pd.to_datetime([d for _, d in days], utc=True))
        found = found[_keys(found["machine_id"], found["bucket"].dt.floor("86400s")).isin(touched)]
        _insert(conn, _combine(found, DAY), DAY)


def _day_hours(
    conn: Connection, machine_ids: list[int], days: set, past_hours: pd.DataFrame, horizons: Horizons
) -> pd.DataFrame:
    """The hour rollups from the first to the last of `days`: stored ones and `past_hours`."""
    r = Rollup.__table__.c
    columns = ["machine_id", "customer_id", "sensor", "bucket", *_STATS]
    first, last = min(d for _, d in days), max(d for _, d in days) + timedelta(days=1)
    # Hours past their horizon come from the rows just read, not from rollups retention has not deleted yet.
    first_stored = max(first, horizons.get(HOUR, first))
    query = select(*(r[c] for c in columns)).where(
        r.machine_id.in_(machine_ids), r.width_s == HOUR, r.bucket >= first_stored, r.bucket < last
    )
    # The past hours as a read of them stored would give: the same sums to the last bit.
    past = [[rec[c] for c in columns] for rec in _records(past_hours, HOUR)]
    found = pd.DataFrame(past + [list(row) for row in conn.execute(query).all()], columns=columns)
    if len(found):
        found["bucket"] = pd.to_datetime(found["bucket"], utc=True)
        found["last_ts"] = pd.to_datetime(found["last_ts"], utc=True)
    return found


def refresh(
    engine: Engine,
    *,
    archive_url: str,
    horizons: Horizons | None = None,
    batch: int = 100,
    report: progress.Report | None = None,
) -> int:
    """Recompute the rollups of every dirty hour, `batch` marks a transaction; returns hours refreshed.

    `horizons` (width → oldest bucket kept, `retention.rollup_horizons`): older buckets, which retention
    would delete, are not made, and their marks go all the same. `report` is told after each batch the
    hours done and the total: the marks found at the start, or more when hours are marked meanwhile.

    One sweep in (machine, hour) order: an hour that rows log again behind the sweep (a live machine's
    current hour) waits for the next run, so a run ends while ingest goes on. Each transaction holds
    SQLite's write lock while it reads and aggregates its hours' rows: the batches are small, and other
    writers get their turn between them.
    """
    done, after = 0, None
    if report is not None:
        with engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(RollupDirty)) or 0
    marks_in_order = select(RollupDirty.machine_id, RollupDirty.hour).order_by(
        RollupDirty.machine_id, RollupDirty.hour
    )
    while True:
        query = marks_in_order if after is None else marks_in_order.where(_MARK > after)
        # Reads the marks, then deletes them: on SQLite the transaction holds the write lock from BEGIN.
        with for_writing(engine).begin() as conn:
            dialect.serialize(conn, REFRESH_LOCK)  # before the marks are read: another batch's are gone then
            marks = conn.execute(query.limit(batch)).all()
            if not marks:
                return done
            # Deleted before the rows are read: an insert committing meanwhile logs its hour again.
            conn.execute(delete(RollupDirty).where(_MARK.in_([tuple(m) for m in marks])))
            by_machine: dict[int, list[datetime]] = {}
            for machine_id, hour in marks:
                by_machine.setdefault(machine_id, []).append(hour)
            _refresh_batch(conn, by_machine, archive_url, horizons or {})
            done += len(marks)
        if report is not None:
            total = max(total, done)
            report(done, total)
        after = tuple(marks[-1])
        give_way(engine)


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
