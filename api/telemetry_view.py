"""Telemetry for charts: a time window of one machine, averaged server-side into few enough points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from api import schemas
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
    width_ms = max(1, int((end - start).total_seconds() * 1000 / max_points))
    width = timedelta(milliseconds=width_ms)
    # Averaged in the database: decoding every row's JSON in Python would cost ~20 µs a row.
    dialect = sess.get_bind().dialect.name
    bucket, value = _BUCKET[dialect], _VALUE[dialect]
    columns = ", ".join(f"avg({value.format(p=f':s{i}')})" for i in range(len(sensors)))
    sql = text(
        f"SELECT {bucket} AS b, {columns} FROM telemetry "
        "WHERE machine_id = :machine AND ts >= :start AND ts < :end GROUP BY b ORDER BY b"
    )
    params = {"machine": machine_id, "start": _param(start, dialect), "end": _param(end, dialect)}
    params["width_ms"] = width_ms
    params.update({f"s{i}": _key(name, dialect) for i, name in enumerate(sensors)})
    for row in sess.execute(sql, params):
        readings = {
            n: (None if v is None else round(float(v), 4)) for n, v in zip(sensors, row[1:], strict=True)
        }
        out.points.append(schemas.TelemetryPoint(ts=start + width * int(row[0]), readings=readings))
    return out


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
