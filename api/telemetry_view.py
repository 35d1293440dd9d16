"""Telemetry for charts: a time window of one machine, averaged server-side into few enough points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    point = schemas.TelemetryPoint.model_construct if found.downsampled else schemas.TelemetryPoint
    return schemas.TelemetryOut(
        machine_id=machine_id,
        start=start,
        end=end,
        rows=found.rows,
        downsampled=found.downsampled,
        points=[point(ts=ts, readings=readings) for ts, readings in found.points],
    )
