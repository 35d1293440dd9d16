"""Telemetry for charts: a time window of one machine, averaged server-side into few enough points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pydantic_core
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from api import schemas
from fleet import errors, panels
from fleet.settings import Settings, get_settings


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


def window_json(
    conn: Connection, *, machine_id: int, start: datetime, end: datetime, max_points: int, archive_url: str
) -> bytes:
    """`window`'s answer as the JSON bytes FastAPI would send for it (the route's `response_model`).

    Bucket means go straight from plain dicts to JSON through pydantic's serializer, the one FastAPI
    uses: building, revalidating and dumping a model per point cost more than the averaging itself.
    """
    found = panels.read_window(
        conn, machine_id=machine_id, start=start, end=end, max_points=max_points, archive_url=archive_url
    )
    head = {"machine_id": machine_id, "start": start, "end": end, "rows": found.rows}
    if not found.downsampled:  # raw rows are validated (a stored integer reading is answered as a float)
        out = schemas.TelemetryOut(**head, downsampled=False, points=_points(found.points, validate=True))
        return out.model_dump_json().encode()
    points = [{"ts": ts, "readings": readings} for ts, readings in found.points]
    return pydantic_core.to_json({**head, "downsampled": True, "points": points})


def _points(points: list[tuple[datetime, dict]], *, validate: bool) -> list[schemas.TelemetryPoint]:
    point = schemas.TelemetryPoint if validate else schemas.TelemetryPoint.model_construct
    return [point(ts=ts, readings=readings) for ts, readings in points]


def window(
    sess: Session, *, machine_id: int, start: datetime, end: datetime, max_points: int
) -> schemas.TelemetryOut:
    """Rows in [start, end), as bucket means when there are more than `max_points`; empty if end <= start."""
    found = panels.read_window(
        sess.connection(),
        machine_id=machine_id,
        start=start,
        end=end,
        max_points=max_points,
        archive_url=get_settings().archive_url,  # long windows from rollups, archived rows included
    )
    # Bucket means are floats or None by construction: built without a validation per point. Raw rows are
    # validated (a stored integer reading is answered as a float).
    return schemas.TelemetryOut(
        machine_id=machine_id,
        start=start,
        end=end,
        rows=found.rows,
        downsampled=found.downsampled,
        points=_points(found.points, validate=not found.downsampled),
    )
