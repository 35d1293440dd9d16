"""Chart windows' bucket means: from hour rollups, and from raw rows (hot, or hot + archived).

A long window reads the hour rollups of its whole, clean hours and the raw rows (hot and archived) of
the partial hours at its edges and of hours whose rollups are being refreshed: fresh and cheap, a few
thousand rollup rows instead of tens of thousands of JSON rows. A rollup hour falls into the chart
bucket its start falls in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import repeat

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Connection, text

from fleet import dialect, history, rollups

HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _hour_floor(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _hour_ceil(ts: datetime) -> datetime:
    floor = _hour_floor(ts)
    return floor if floor == ts else floor + HOUR


def _spans(pieces: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[list[datetime]] = []
    for a, b in sorted(p for p in pieces if p[0] < p[1]):
        if merged and merged[-1][1] >= a:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def round4(values: np.ndarray) -> list[float | None]:
    """Python's `round(v, 4)` of each value, None for NaN and infinities; vectorised where that is exact.

    rint(v * 1e4) / 1e4 is Python's answer whenever the product is clearly off a half (the division of two
    exact numbers is correctly rounded); values near a half, or too large, go through `round` itself.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = values * 1e4
        steps = np.rint(scaled)
        unsure = (np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) <= 1e-9 * (1 + np.abs(scaled))) | (
            np.abs(scaled) >= 2.0**50
        )
    out = (steps / 1e4).tolist()
    for at in np.flatnonzero(unsure).tolist():
        out[at] = round(float(values[at]), 4)
    for at in np.flatnonzero(~np.isfinite(values)).tolist():
        out[at] = None
    return out


class Sums:
    """Per chart bucket and sensor: sum and count, and the messages counted.

    Raw values are summed scaled by `scale` (a power of two, so without rounding): with 2^-k and 2^k above
    the rows, the sum of the largest finite readings cannot overflow; the means are scaled back. Each call
    adds one part (bucket numbers and per sensor: buckets, sums, counts, as arrays); `points` merges the
    parts in call order, so every sum is added up in the same order as one running total would be.
    """

    def __init__(self, start: datetime, width: timedelta, *, scale: float = 1.0) -> None:
        self.start, self.width, self.scale = start, width, scale
        self.rows = 0
        self.sensors: set[str] = set()
        self._buckets: list[np.ndarray] = []  # buckets that are points (a row, or a rollup of a sensor)
        self._parts: list[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = []

    def add_values(self, ms: np.ndarray, readings: list[dict]) -> None:
        """Raw rows as epoch milliseconds and readings, summed a sensor at a time over all rows at once."""
        self.rows += len(readings)
        if not readings:
            return
        first = round((self.start - EPOCH) / timedelta(milliseconds=1))
        index = (np.asarray(ms, dtype=np.int64) - first) // round(self.width / timedelta(milliseconds=1))
        low = int(index.min())
        if index.max() - low <= 4 * len(index) + 1024:
            # Buckets counted from the first one, without a sort: rows of a window span few buckets.
            inverse = index - low
            buckets = np.flatnonzero(np.bincount(inverse))
            slots, inverse = len(buckets), np.searchsorted(buckets, inverse)
            buckets += low
        else:
            buckets, inverse = np.unique(index, return_inverse=True)
            slots = len(buckets)
        self._buckets.append(buckets)  # every bucket with a row is a point, also when all its values are null
        names = set().union(*readings)
        self.sensors.update(names)
        part = {}
        for name in names:
            # None -> NaN; map and fromiter iterate in C, a comprehension took ~1.7x as long
            values = np.fromiter(map(dict.get, readings, repeat(name)), dtype=float, count=len(readings))
            present = ~np.isnan(values)
            n = np.bincount(inverse, weights=present, minlength=slots).astype(np.int64)
            total = np.bincount(inverse, weights=np.where(present, values * self.scale, 0.0), minlength=slots)
            kept = n > 0
            part[name] = (buckets[kept], total[kept], n[kept])
        self._parts.append(part)

    def add_rows(self, frame: pd.DataFrame) -> None:
        """Raw rows (`history.read_rows`)."""
        ns = frame["ts"].to_numpy("datetime64[ns]").view(np.int64)
        self.add_values((ns + 500_000) // 1_000_000, list(frame["readings"]))

    def add_rollups(self, frame: pd.DataFrame) -> None:
        """Rollup rows (bucket, sensor, n, total), each into the chart bucket its start falls in."""
        if not len(frame):
            return
        messages = frame["sensor"] == rollups.MESSAGES
        self.rows += int(frame.loc[messages, "n"].sum())
        values = frame[~messages & frame["total"].notna()]
        self.sensors.update(frame.loc[~messages, "sensor"].unique())
        index = (values["bucket"] - pd.Timestamp(self.start)) // pd.Timedelta(self.width)
        grouped = values.groupby([index.astype(np.int64), values["sensor"]], sort=False)[["n", "total"]].sum()
        if not len(grouped):
            return
        buckets = grouped.index.get_level_values(0).to_numpy(np.int64)
        sensors = grouped.index.get_level_values(1).to_numpy(object)
        totals = grouped["total"].to_numpy(float) * self.scale
        counts = grouped["n"].to_numpy(np.int64)
        self._buckets.append(np.unique(buckets))
        part = {}
        for name in np.unique(sensors).tolist():
            mine = sensors == name
            part[name] = (buckets[mine], totals[mine], counts[mine])
        self._parts.append(part)

    def means(self) -> tuple[np.ndarray, list[str], list[float | None]]:
        """(bucket numbers in time order, sensor names sorted, each bucket's means rounded: a row a bucket).

        The means are one flat list, bucket after bucket, `round4`ed (None for a bucket without the sensor).
        """
        if not self._buckets:
            return np.empty(0, dtype=np.int64), [], []
        buckets = self._buckets[0] if len(self._buckets) == 1 else np.unique(np.concatenate(self._buckets))
        names = sorted(self.sensors)
        means = np.empty((len(buckets), len(names)))
        for j, name in enumerate(names):
            total = np.zeros(len(buckets))
            count = np.zeros(len(buckets), dtype=np.int64)
            for part in self._parts:
                if name in part:
                    at, sums, n = part[name]
                    where = np.searchsorted(buckets, at)
                    total[where] += sums
                    count[where] += n
            with np.errstate(divide="ignore", invalid="ignore"):
                means[:, j] = total / count / self.scale
        return buckets, names, round4(means.ravel())

    def points(self) -> list[tuple[datetime, dict]]:
        """(bucket start, {sensor: mean or None}) for every bucket with a reading, in time order."""
        buckets, names, flat = self.means()
        times = list(map(self.start.__add__, map(self.width.__mul__, buckets.tolist())))
        if not names:
            return [(ts, {}) for ts in times]
        # A bucket's len(names) values a row, each made a dict in C (map, zip): a comprehension slicing
        # the values took twice as long.
        rows = zip(*[iter(flat)] * len(names), strict=True)
        return list(zip(times, map(dict, map(zip, repeat(names), rows)), strict=True))


def hot_values(
    conn: Connection, *, machine_id: int, start: datetime, end: datetime
) -> tuple[np.ndarray, list]:
    """A machine's hot rows in [start, end) as (epoch milliseconds, readings), in the index's order.

    One aggregate row: the times and the readings each come joined into one text (PostgreSQL: the times
    as one array), decoded by one numpy and one `orjson` call, with no driver object per row.
    """
    d = conn.dialect
    if d.name == "sqlite":
        times, readings = "group_concat(ts, ',')", "group_concat(readings, ',')"
    else:
        times, readings = f"array_agg({dialect.epoch_ms('ts', d)})", "string_agg(readings::text, ',')"
    count, joined_ts, joined = conn.execute(
        text(
            f"SELECT count(*), {times}, '[' || {readings} || ']' FROM telemetry "
            "WHERE machine_id = :m AND ts >= :a AND ts < :b"
        ),
        {"m": machine_id, "a": dialect.ts_param(start, d), "b": dialect.ts_param(end, d)},
    ).cursor.fetchone()
    if not count:
        return np.empty(0, dtype=np.int64), []
    ms = dialect.ms_of_texts(joined_ts, count) if d.name == "sqlite" else np.array(joined_ts, dtype=np.int64)
    return ms, orjson.loads(joined)


def _hour_rollups(conn: Connection, machine_id: int, start: datetime, end: datetime) -> pd.DataFrame:
    """(bucket, sensor, n, total) of a machine's hour rollups, below SQLAlchemy's per-value types."""
    d = conn.dialect
    # Buckets as epoch milliseconds: pandas parses PostgreSQL's aware datetimes one object at a time
    # (~50 ms for a 30-day chart's 7,000 rollup rows), integers in one vectorised call.
    rows = conn.execute(
        text(
            f"SELECT {dialect.epoch_ms('bucket', d)}, sensor, n, total FROM telemetry_rollups "
            "WHERE machine_id = :m AND width_s = :w AND bucket >= :a AND bucket < :b"
        ),
        {"m": machine_id, "w": rollups.HOUR, "a": dialect.ts_param(start, d), "b": dialect.ts_param(end, d)},
    ).cursor.fetchall()  # driver tuples: Row objects cost pandas a lookup each
    frame = pd.DataFrame(rows, columns=["bucket", "sensor", "n", "total"])
    frame["bucket"] = pd.to_datetime(frame["bucket"].to_numpy(dtype="int64"), unit="ms", utc=True)
    frame["total"] = frame["total"].astype(float)
    return frame


def from_rollups(
    conn: Connection,
    *,
    machine_id: int,
    start: datetime,
    end: datetime,
    width: timedelta,
    archive_url: str,
    rollups_since: datetime | None = None,
) -> Sums | None:
    """Bucket sums of [start, end) from hour rollups plus raw edges and dirty hours; None if no whole hour.

    Hours before `rollups_since` are read raw: retention may have deleted their rollups, not their rows.
    """
    first, last = max(_hour_ceil(start), _hour_ceil(rollups_since or start)), _hour_floor(end)
    if first >= last:
        return None
    dirty = set(rollups.pending(conn, machine_id=machine_id, start=first, end=last))
    sums = Sums(start, width)
    found = _hour_rollups(conn, machine_id, first, last)
    if dirty:
        found = found[~found["bucket"].isin(pd.to_datetime(sorted(dirty), utc=True))]
    sums.add_rollups(found)
    raw = [(start, first), (last, end), *((h, h + HOUR) for h in dirty)]
    for a, b in _spans(raw):
        sums.add_rows(
            history.read_rows(conn, machine_ids=[machine_id], start=a, end=b, archive_url=archive_url)
        )
    return sums
