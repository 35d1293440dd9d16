"""Telemetry for charts: a time window of one machine, averaged server-side into few enough points."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import TextClause, func, select, text
from sqlalchemy.orm import Session

from api import schemas
from fleet import errors
from fleet.settings import Settings
from fleet.tables import Telemetry


def shift(ts: datetime, delta: timedelta) -> datetime:
    """ts + delta, clamped to the representable range (a query may ask for year 9999)."""
    try:
        return ts + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC) if delta > timedelta(0) else datetime.min.replace(tzinfo=UTC)


def aware(ts: datetime) -> datetime:
    """A query timestamp without an offset is taken as UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def check_limits(*, start: datetime, end: datetime, max_points: int, settings: Settings) -> None:
    """Refuse (422) a window or a point count beyond the limits: a read's cost grows with both."""
    if max_points > settings.api_telemetry_max_points:
        raise errors.InvalidInput(
            f"max_points is above {settings.api_telemetry_max_points} (SERVICECAST_API_TELEMETRY_MAX_POINTS)"
        )
    if end - start > timedelta(days=settings.api_telemetry_max_window_days):
        raise errors.InvalidInput(
            f"the window is longer than {settings.api_telemetry_max_window_days:g} days "
            "(SERVICECAST_API_TELEMETRY_MAX_WINDOW_DAYS)"
        )


def window(
    sess: Session, machine_id: int, start: datetime, end: datetime, max_points: int
) -> schemas.TelemetryOut:
    """Rows in [start, end), as bucket means when there are more than `max_points`; empty if end <= start."""
    out = schemas.TelemetryOut(
        machine_id=machine_id, start=start, end=end, rows=0, downsampled=False, points=[]
    )
    if end <= start:
        return out
    in_range = (Telemetry.machine_id == machine_id, Telemetry.ts >= start, Telemetry.ts < end)
    out.rows = sess.scalar(select(func.count()).select_from(Telemetry).where(*in_range)) or 0
    if out.rows <= max_points:
        query = select(Telemetry.ts, Telemetry.readings).where(*in_range).order_by(Telemetry.ts)
        out.points = [schemas.TelemetryPoint(ts=ts, readings=r) for ts, r in sess.execute(query)]
        return out
    out.downsampled = True
    sensors = _sensors(sess, in_range)
    # Rounded up: rounded down, the last few milliseconds of the window made one bucket too many.
    width_ms = max(1, math.ceil((end - start) / timedelta(milliseconds=1) / max_points))
    width = timedelta(milliseconds=width_ms)
    # Averaged in the database: decoding every row's JSON in Python would cost ~20 µs a row.
    dialect = sess.get_bind().dialect.name
    params = {"machine": machine_id, "start": _param(start, dialect), "end": _param(end, dialect)}
    # Each value is scaled by 2^-k with 2^k > rows before summing: the sum of the largest finite
    # readings then cannot overflow, and a power of two scales without rounding.
    k = out.rows.bit_length()
    params.update(width_ms=width_ms, scale=2.0**-k, unscale=2.0**k)
    buckets: dict[int, dict[str, float | None]] = {}
    # A column per sensor, at most SENSORS_PER_QUERY at once: the databases cap a select's columns.
    for first in range(0, len(sensors), SENSORS_PER_QUERY):
        chunk = sensors[first : first + SENSORS_PER_QUERY]
        for row in sess.execute(_mean_query(dialect, len(chunk)), params | _keys(chunk, dialect)):
            readings = buckets.setdefault(int(row[0]), {})
            for name, value in zip(chunk, row[1:], strict=True):
                readings[name] = None if value is None else round(float(value), 4)
    out.points = [
        schemas.TelemetryPoint(ts=start + width * bucket, readings=readings)
        for bucket, readings in sorted(buckets.items())
    ]
    return out


SENSORS_PER_QUERY = 500


def _mean_query(dialect: str, sensors: int) -> TextClause:
    value = _VALUE[dialect]
    means = ", ".join(
        f"sum({value.format(p=f':s{i}')} * :scale) / count({value.format(p=f':s{i}')}) * :unscale"
        for i in range(sensors)
    )
    return text(
        f"SELECT {_BUCKET[dialect]} AS b, {means} FROM telemetry "
        "WHERE machine_id = :machine AND ts >= :start AND ts < :end GROUP BY b ORDER BY b"
    )


def _keys(sensors: list[str], dialect: str) -> dict[str, str]:
    return {f"s{i}": _key(name, dialect) for i, name in enumerate(sensors)}


_BUCKET = {
    # Whole milliseconds since the start, divided as integers: float days would misplace rows on a boundary.
    "sqlite": "CAST(round((julianday(ts) - julianday(:start)) * 86400000.0) AS INTEGER) / :width_ms",
    "postgresql": "CAST(floor(extract(epoch FROM (ts - CAST(:start AS timestamptz))) * 1000 / :width_ms) "
    "AS INTEGER)",
}
# The ingest contract admits only numbers and nulls as readings, so no type check per value is needed.
_VALUE = {
    "sqlite": "json_extract(readings, {p})",
    "postgresql": "(readings ->> {p})::float8",
}


def _key(name: str, dialect: str) -> str:
    """A sensor name as a bound JSON key (a quoted path on SQLite), so any name is safe."""
    if dialect == "sqlite":
        return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


def _param(ts: datetime, dialect: str) -> object:
    """A bound timestamp as the dialect stores it (SQLite keeps UTC text, as SQLAlchemy writes it)."""
    if dialect == "sqlite":
        return ts.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return ts


def _sensors(sess: Session, in_range: tuple) -> list[str]:
    """Sensor names of the window, from its first and last rows."""
    names: set[str] = set()
    for order in (Telemetry.ts, Telemetry.ts.desc()):
        query = select(Telemetry.readings).where(*in_range).order_by(order).limit(50)
        for readings in sess.scalars(query):
            names.update(readings)
    return sorted(names)
