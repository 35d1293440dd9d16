"""Telemetry reads for the later stages: sensor names, long panels (scoring, training), chart windows."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, bindparam, select, text

from fleet import archive, dialect, history, retention, rollups, windows
from fleet.settings import get_settings
from fleet.tables import Machine, Site, Telemetry, utcnow

_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def sensor_names(
    conn: Connection,
    *,
    machine_ids: Sequence[int],
    start: datetime | None = None,
    end: datetime | None = None,
    rows: int = 50,
) -> list[str]:
    """Reading names in the first and last `rows` rows of these machines (in [start, end) if given).

    In the order first seen; rows come by (machine_id, ts), so the (machine_id, ts) index serves it.
    """
    where = [Telemetry.machine_id.in_(list(machine_ids))]
    if start is not None:
        where.append(Telemetry.ts >= start)
    if end is not None:
        where.append(Telemetry.ts < end)
    names: dict[str, None] = {}
    for order in ((Telemetry.machine_id, Telemetry.ts), (Telemetry.machine_id.desc(), Telemetry.ts.desc())):
        for readings in conn.scalars(select(Telemetry.readings).where(*where).order_by(*order).limit(rows)):
            names.update(dict.fromkeys(readings or {}))
    return list(names)


def read_panel(
    conn: Connection,
    *,
    machine_ids: Sequence[int],
    since: datetime,
    sensors: Sequence[str],
    archive_url: str | None = None,
) -> pd.DataFrame:
    """Telemetry of these machines from `since` as a long panel (machine = machine id).

    The database extracts each sensor from the JSON readings, the time as epoch milliseconds and whether
    the machine was running, so every column is numeric and the rows become one float array in a single
    call: no JSON, timestamp text or per-row Python objects on this side. `state` is "running" or
    "stopped" (what the features distinguish). `timezone`, only when a machine's site has one: that IANA
    name (the features' daily baselines then follow its local clock), empty for the others.
    """
    bad = [s for s in sensors if not _NAME.match(s)]
    if bad:
        raise ValueError(f"sensor names must be identifiers: {bad}")
    d = conn.dialect
    picks = "".join(
        f", {dialect.json_number('readings', dialect.literal(dialect.json_key(s, d)), dialect=d)}"
        for s in sensors
    )
    state = dialect.json_text("extra", dialect.literal(dialect.json_key("state", d)), dialect=d)
    running = dialect.as_int(f"coalesce({state}, 'running') = 'running'", d)
    marks = ",".join(str(int(m)) for m in machine_ids)
    sql = (
        f"SELECT machine_id, seq, {dialect.epoch_ms('ts', d)}, {running}{picks} FROM telemetry "
        f"WHERE machine_id IN ({marks}) AND ts >= :since"
    )
    rows = conn.execute(text(sql), {"since": dialect.ts_param(since, d)}).cursor.fetchall()
    values = np.array(rows, dtype=float).reshape(len(rows), 4 + len(sensors))  # None -> NaN
    frame = pd.DataFrame({"machine": values[:, 0].astype(np.int64), "seq": values[:, 1].astype(np.int64)})
    frame["ts"] = pd.to_datetime(values[:, 2].astype(np.int64), unit="ms", utc=True)
    frame["state"] = np.where(values[:, 3] > 0, "running", "stopped").astype(object)
    for j, s in enumerate(sensors):
        frame[s] = values[:, 4 + j]
    # Archived rows too (settings' archive unless named): training reads a type's whole history.
    if archive.files_for(conn, machine_ids=machine_ids, start=since, end=None):
        url = archive_url if archive_url is not None else get_settings().archive_url
        cold = archive.read(conn, url=url, machine_ids=machine_ids, start=since)
        if len(cold):
            both = pd.concat([frame, _as_panel(cold, sensors)], ignore_index=True)
            frame = both.drop_duplicates(["machine", "seq"]).sort_values(["machine", "ts"], kind="stable")
            frame = frame.reset_index(drop=True)
    zones = site_zones(conn, machine_ids)
    if zones:
        frame["timezone"] = pd.Categorical(frame["machine"].map(zones).fillna(""))
    return frame


def site_zones(conn: Connection, machine_ids: Sequence[int]) -> dict[int, str]:
    """The time zone of each of these machines whose site has one."""
    query = (
        select(Machine.id, Site.timezone)
        .join(Site, Machine.site_id == Site.id)
        .where(Machine.id.in_([int(m) for m in machine_ids]), Site.timezone.is_not(None))
    )
    return dict(conn.execute(query).all())


def _as_panel(rows: pd.DataFrame, sensors: Sequence[str]) -> pd.DataFrame:
    """Telemetry rows (`history.read_rows`) in `read_panel`'s columns: times to the millisecond as there."""
    frame = pd.DataFrame(
        {"machine": rows["machine_id"].to_numpy(np.int64), "seq": rows["seq"].to_numpy(np.int64)}
    )
    frame["ts"] = rows["ts"].dt.round("ms").to_numpy()
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    running = [(e or {}).get("state", "running") == "running" for e in rows["extra"]]
    frame["state"] = np.where(running, "running", "stopped").astype(object)
    for s in sensors:
        frame[s] = np.array([r.get(s) for r in rows["readings"]], dtype=float)
    return frame


@dataclass(eq=False)
class Window:
    """A machine's rows in [start, end): every row, or bucket means when there were too many."""

    rows: int = 0
    downsampled: bool = False
    raw: list[tuple[datetime, dict]] = field(default_factory=list)
    sums: windows.Sums | None = None  # the bucket sums of a downsampled window

    @property
    def points(self) -> list[tuple[datetime, dict]]:
        """(time, readings) of every row, or (bucket start, means) of every bucket with a reading."""
        return self.raw if self.sums is None else self.sums.points()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Window):
            return NotImplemented
        return (self.rows, self.downsampled, self.points) == (other.rows, other.downsampled, other.points)


_IN_RANGE = (
    Telemetry.machine_id == bindparam("machine"),
    Telemetry.ts >= bindparam("start"),
    Telemetry.ts < bindparam("end"),
)
# Built once: building the expressions cost more per request than SQLite's index lookup.
_ROWS = select(Telemetry.ts, Telemetry.readings).where(*_IN_RANGE).order_by(Telemetry.ts)


def read_window(
    conn: Connection,
    *,
    machine_id: int,
    start: datetime,
    end: datetime,
    max_points: int,
    archive_url: str | None = None,
) -> Window:
    """Rows in [start, end), as bucket means when there are more than `max_points`; empty if end <= start.

    Given the archive's URL, archived rows count too, and a window whose buckets are an hour or longer
    is served from the hour rollups (`fleet.windows`).
    """
    out = Window()
    if end <= start:
        return out
    if archive_url is not None:
        found = _lifecycle_window(conn, machine_id, start, end, max_points, archive_url)
        if found is not None:
            return found
    # Averaged here from two columns of the rows, one JSON decode for all of them. SQLite's JSON functions
    # (3.40, no parse cache) parsed each row's readings once per sensor and statistic, after two reads
    # for the sensor names: ~20 % more CPU a request (docs/benchmarks.md, "API under load"). Read before
    # the count is known: a chart's window mostly holds more rows than points.
    ms, readings = windows.hot_values(conn, machine_id=machine_id, start=start, end=end)
    if len(readings) <= max_points:  # every row, read again with its exact time
        params = {"machine": machine_id, "start": start, "end": end}
        out.raw = [(ts, readings) for ts, readings in conn.execute(_ROWS, params)]
        out.rows = len(out.raw)
        return out
    out.rows, out.downsampled = len(readings), True
    # Rounded up: rounded down, the last few milliseconds of the window made one bucket too many.
    width = timedelta(milliseconds=max(1, math.ceil((end - start) / timedelta(milliseconds=1) / max_points)))
    sums = windows.Sums(start, width, scale=2.0 ** -out.rows.bit_length())
    sums.add_values(ms, readings)
    out.sums = sums
    return out


def _lifecycle_window(
    conn: Connection, machine_id: int, start: datetime, end: datetime, max_points: int, archive_url: str
) -> Window | None:
    """The window from rollups or from hot + archived rows; None when the hot table's SQL serves it."""
    width = timedelta(milliseconds=max(1, math.ceil((end - start) / timedelta(milliseconds=1) / max_points)))
    sums = None
    if width >= timedelta(hours=1):
        sums = windows.from_rollups(
            conn,
            machine_id=machine_id,
            start=start,
            end=end,
            width=width,
            archive_url=archive_url,
            rollups_since=retention.rollup_horizons(get_settings(), utcnow()).get(rollups.HOUR),
        )
        if sums is not None and sums.rows <= max_points:
            sums = None  # few rows: every one of them, below
    if sums is None:
        if not archive.files_for(conn, machine_ids=[machine_id], start=start, end=end):
            return None
        rows = history.read_rows(
            conn, machine_ids=[machine_id], start=start, end=end, archive_url=archive_url
        )
        if len(rows) <= max_points:
            points = [(ts.to_pydatetime(), r) for ts, r in zip(rows["ts"], rows["readings"], strict=True)]
            return Window(rows=len(rows), downsampled=False, raw=points)
        sums = windows.Sums(start, width, scale=2.0 ** -len(rows).bit_length())
        sums.add_rows(rows)
    return Window(rows=sums.rows, downsampled=True, sums=sums)
