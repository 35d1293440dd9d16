"""Telemetry for charts: a time window of one machine, averaged server-side into few enough points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import select
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
    query = (
        select(Telemetry.ts, Telemetry.readings)
        .where(Telemetry.machine_id == machine_id, Telemetry.ts >= start, Telemetry.ts < end)
        .order_by(Telemetry.ts)
    )
    rows = sess.execute(query).all() if end > start else []
    out = schemas.TelemetryOut(
        machine_id=machine_id,
        start=start,
        end=end,
        rows=len(rows),
        downsampled=len(rows) > max_points,
        points=[],
    )
    if not rows:
        return out
    if len(rows) <= max_points:
        out.points = [schemas.TelemetryPoint(ts=ts, readings=readings) for ts, readings in rows]
        return out
    frame = pd.DataFrame([r for _, r in rows], index=pd.DatetimeIndex([ts for ts, _ in rows]))
    frame = frame.apply(pd.to_numeric, errors="coerce")
    width = (end - start) / max_points
    buckets = frame.groupby(((frame.index - pd.Timestamp(start)) // width).astype(int)).mean()
    out.points = [
        schemas.TelemetryPoint(
            ts=start + width * int(bucket),
            readings={k: (None if pd.isna(v) else round(float(v), 4)) for k, v in values.items()},
        )
        for bucket, values in buckets.iterrows()
    ]
    return out
