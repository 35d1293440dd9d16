"""Telemetry for charts: raw rows for short windows, bucket means computed by the database for long ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine

from api import telemetry_view
from fleet import registry, telemetry
from fleet.db import session

START = datetime(2026, 11, 1, tzinfo=UTC)


def _store(engine: Engine, minutes: int) -> tuple[int, int, list[dict]]:
    registry.add_customer(engine=engine, tenant="acme")
    first = registry.add_machine(engine=engine, tenant="acme", code="pump-1", machine_type="pump")
    other = registry.add_machine(engine=engine, tenant="acme", code="pump-2", machine_type="pump")
    rows = []
    for machine, scale in ((first, 1.0), (other, 100.0)):
        for i in range(minutes):
            readings = {"vibration": scale * (i % 17) + 0.25, "bearing.temp-c": 60.0 + (i % 5)}
            if i % 11 == 0:
                del readings["bearing.temp-c"]  # a sensor that drops out now and then
            if i % 13 == 0:
                readings["vibration"] = None  # a reading sent as null is left out of the mean
            rows.append(
                {
                    "customer_id": machine.customer_id,
                    "machine_id": machine.id,
                    "seq": i + 1,
                    "ts": START + timedelta(minutes=i),
                    "readings": readings,
                    "received_at": START,
                }
            )
    with engine.begin() as conn:
        telemetry.insert_telemetry(conn, rows)
    return first.id, other.id, [r for r in rows if r["machine_id"] == first.id]


def test_long_windows_are_bucket_means_of_the_machines_own_rows(engine: Engine) -> None:
    machine, _, rows = _store(engine, 3000)
    end = START + timedelta(minutes=3000)
    with session(engine) as sess:
        out = telemetry_view.window(sess, machine, START, end, 100)
    assert out.rows == 3000 and out.downsampled and len(out.points) == 100
    frame = pd.DataFrame([r["readings"] for r in rows], index=[r["ts"] for r in rows])
    width = (end - START) / 100
    expected = frame.astype(float).groupby((frame.index - START) // width).mean()
    for point, (bucket, means) in zip(out.points, expected.iterrows(), strict=True):
        assert point.ts == START + width * bucket
        assert point.readings["vibration"] == pytest.approx(means["vibration"], abs=1e-4)
        assert point.readings["bearing.temp-c"] == pytest.approx(means["bearing.temp-c"], abs=1e-4)


def test_short_windows_are_the_raw_rows_and_empty_windows_are_empty(engine: Engine) -> None:
    machine, _, rows = _store(engine, 300)
    with session(engine) as sess:
        out = telemetry_view.window(sess, machine, START, START + timedelta(minutes=60), 100)
        empty = telemetry_view.window(sess, machine, START, START, 100)
    assert (out.rows, out.downsampled, len(out.points)) == (60, False, 60)
    assert out.points[7].readings == rows[7]["readings"]
    assert (empty.rows, empty.points) == (0, [])
