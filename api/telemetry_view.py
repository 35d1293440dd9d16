"""Telemetry for charts: a time window of one machine, averaged server-side into few enough points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pydantic_core
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from api import schemas
from fleet import errors, panels, windows
from fleet.settings import Settings, env_name, get_settings

_EPOCH = datetime(1970, 1, 1)
# The window a query may name: in UTC, and with the hour the store looks back before its start, it stays
# inside datetime's years 1 to 9999 (a time in year 1 or 9999 with an offset may lie outside them).
EARLIEST, LATEST = datetime(1, 1, 2, tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def shift(ts: datetime, delta: timedelta) -> datetime:
    """ts + delta, clamped to [EARLIEST, LATEST] (a query may ask for year 1 or 9999)."""
    try:
        moved = ts + delta
    except OverflowError:
        return LATEST if delta > timedelta(0) else EARLIEST
    return min(max(moved, EARLIEST), LATEST)


def aware(ts: datetime) -> datetime:
    """A query timestamp without an offset is taken as UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def check_limits(*, start: datetime, end: datetime, max_points: int, settings: Settings) -> None:
    """Refuse (422) a reversed window, or a window or a point count beyond the limits (a read's cost grows
    with both)."""
    if not (EARLIEST <= start <= LATEST and EARLIEST <= end <= LATEST):
        raise errors.InvalidInput(
            f"a window must lie between {EARLIEST.date().isoformat()} and {LATEST.date().isoformat()} (UTC)"
        )
    if start > end:  # an empty answer would read as a machine that sent nothing
        raise errors.InvalidInput("the window's start must not be after its end")
    if max_points > settings.api_telemetry_max_points:
        limit = settings.api_telemetry_max_points
        raise errors.InvalidInput(f"max_points is above {limit} ({env_name('api_telemetry_max_points')})")
    if end - start > timedelta(days=settings.api_telemetry_max_window_days):
        raise errors.InvalidInput(
            f"the window is longer than {settings.api_telemetry_max_window_days:g} days "
            f"({env_name('api_telemetry_max_window_days')})"
        )


def window_json(
    conn: Connection, *, machine_id: int, start: datetime, end: datetime, max_points: int, archive_url: str
) -> bytes:
    """`window`'s answer as the JSON bytes FastAPI would send for it (the route's `response_model`).

    Bucket means are written straight to JSON (`means_json`): building, revalidating and dumping a model
    per point cost more than the averaging itself.
    """
    found = panels.read_window(
        conn, machine_id=machine_id, start=start, end=end, max_points=max_points, archive_url=archive_url
    )
    head = {"machine_id": machine_id, "start": start, "end": end, "rows": found.rows}
    if not found.downsampled:  # raw rows are validated (a stored integer reading is answered as a float)
        out = schemas.TelemetryOut(**head, downsampled=False, points=_points(found.points, validate=True))
        return out.model_dump_json().encode()
    return means_json(head, found.sums) if found.sums is not None else _dumped(head, found.points)


def _dumped(head: dict, points: list[tuple[datetime, dict]]) -> bytes:
    listed = [{"ts": ts, "readings": readings} for ts, readings in points]
    return pydantic_core.to_json({**head, "downsampled": True, "points": listed})


def means_json(head: dict, sums: windows.Sums) -> bytes:
    """`_dumped(head, sums.points())`'s bytes, written without a datetime or a dict per point.

    The means are dumped in one `orjson` call (the same shortest float text as pydantic's) and the bucket
    times formatted by numpy; a window in an offset with seconds, or without sensors, takes the plain way.
    """
    buckets, names, flat = sums.means()
    offset = sums.start.utcoffset() or timedelta(0)
    if not names or offset % timedelta(minutes=1) or sums.start.year < 1000:
        return _dumped(head, sums.points())
    us = timedelta(microseconds=1)
    local = (sums.start.replace(tzinfo=None) - _EPOCH) // us + buckets * (sums.width // us)
    texts = np.datetime_as_string(local.astype("datetime64[us]"), unit="us").astype("S").tolist()
    # pydantic writes a whole second without its fraction
    whole = (local % 1_000_000 == 0).tolist()
    times = [t[:19] if w else t for t, w in zip(texts, whole, strict=True)]
    minutes = offset // timedelta(minutes=1)
    zone = (b"-" if minutes < 0 else b"+") + b"%02d:%02d" % divmod(abs(minutes), 60) if minutes else b"Z"
    keys = b",".join(orjson.dumps(name).replace(b"%", b"%%") + b":%s" for name in names)
    point = b'{"ts":"%s' + zone + b'","readings":{' + keys + b"}}"
    values = orjson.dumps(flat)[1:-1].split(b",")
    rows = zip(times, *[iter(values)] * len(names), strict=True)
    listed = b",".join(map(point.__mod__, rows))
    return pydantic_core.to_json({**head, "downsampled": True})[:-1] + b',"points":[' + listed + b"]}"


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
