"""The telemetry route's answer equals a straightforward pandas computation over the raw rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pandas as pd
import pytest
from sqlalchemy import Engine

from api import telemetry_view
from fleet import archive, registry, rollups, telemetry

START = datetime(2026, 11, 1, tzinfo=UTC)


def _readings(i: int) -> dict:
    # Multiples of 1/8: every sum is exact, so any summation order gives the same mean.
    readings = {"vibration": (i % 17) * 0.375 + 0.25, "temp": 60 + (i % 5), "flow": -(i % 3) / 8}
    if i % 11 == 0:
        del readings["temp"]  # a sensor that drops out now and then
    if i % 13 == 0:
        readings["vibration"] = None  # a null is left out of the mean
    if 100 <= i < 110:
        readings["rare"] = float(i)  # a sensor read only in between
    return readings


def _store(engine: Engine, minutes: int) -> tuple[int, list[dict]]:
    registry.add_customer(engine=engine, tenant="acme")
    machine = registry.add_machine(engine=engine, tenant="acme", code="pump-1", machine_type="pump")
    other = registry.add_machine(engine=engine, tenant="acme", code="pump-2", machine_type="pump")
    rows = [
        {
            "customer_id": m.customer_id,
            "machine_id": m.id,
            "seq": i + 1,
            # seconds and milliseconds off the minute: rows fall on and next to bucket edges
            "ts": START + timedelta(minutes=i, seconds=i % 7, milliseconds=250 * (i % 4)),
            "readings": _readings(i) if m is machine else {"vibration": 1e6},
            "received_at": START,
        }
        for m in (machine, other)
        for i in range(minutes)
    ]
    with engine.begin() as conn:
        telemetry.insert_telemetry(conn, rows)
    return machine.id, [r for r in rows if r["machine_id"] == machine.id]


def _ms(ts: datetime) -> int:
    return round((ts - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


def _reference(rows: list[dict], start: datetime, end: datetime, max_points: int, machine: int) -> dict:
    """The documented answer, computed the plain way: pandas means of the rows in each bucket."""
    inside = [r for r in rows if start <= r["ts"] < end]
    head = {"machine_id": machine, "start": start, "end": end, "rows": len(inside)}
    if len(inside) <= max_points:
        as_floats = [{k: None if v is None else float(v) for k, v in r["readings"].items()} for r in inside]
        points = [{"ts": r["ts"], "readings": f} for r, f in zip(inside, as_floats, strict=True)]
        return head | {"downsampled": False, "points": points}
    width_ms = max(1, math.ceil((end - start) / timedelta(milliseconds=1) / max_points))
    frame = pd.DataFrame([r["readings"] for r in inside]).astype(float)
    bucket = [(_ms(r["ts"]) - _ms(start)) // width_ms for r in inside]
    means = frame.groupby(bucket).mean()[sorted(frame.columns)]
    points = [
        {
            "ts": start + timedelta(milliseconds=width_ms) * b,
            "readings": {k: None if math.isnan(v) else round(v, 4) for k, v in row.items()},
        }
        for b, row in means.iterrows()
    ]
    return head | {"downsampled": True, "points": points}


def _answer(engine: Engine, machine: int, start: datetime, end: datetime, points: int, url: str) -> dict:
    with engine.connect() as conn:
        body = telemetry_view.window_json(
            conn, machine_id=machine, start=start, end=end, max_points=points, archive_url=url
        )
    return orjson.loads(body)


def _expected(rows: list[dict], start: datetime, end: datetime, points: int, machine: int) -> dict:
    # through the same JSON as the answer: timestamps as the API writes them
    return orjson.loads(orjson.dumps(_reference(rows, start, end, points, machine), option=orjson.OPT_UTC_Z))


WINDOWS = [  # (start minute, length in minutes, max_points)
    (0, 1000, 200),  # the API benchmark's shape: 1,000 rows into 200 points
    (0, 1000, 333),
    (17.5, 611.25, 37),
    (3, 400, 1000),  # fewer rows than points: the rows themselves
    (990, 20, 10),  # the window's end is past the last row
    (500, 0, 10),  # empty
]


@pytest.mark.parametrize(("first", "minutes", "points"), WINDOWS)
def test_hot_windows_equal_pandas_on_the_raw_rows(engine: Engine, tmp_path, first, minutes, points) -> None:
    machine, rows = _store(engine, 1000)
    start = START + timedelta(minutes=first)
    end = start + timedelta(minutes=minutes)
    url = str(tmp_path / "archive")
    got = _answer(engine, machine, start, end, points, url)
    assert got == _expected(rows, start, end, points, machine)
    assert got["rows"] == len([r for r in rows if start <= r["ts"] < end])


def test_a_window_given_in_another_offset_has_its_buckets_in_that_offset(engine: Engine, tmp_path) -> None:
    machine, rows = _store(engine, 300)
    start = (START + timedelta(minutes=7)).astimezone(timezone(timedelta(hours=2)))
    end = start + timedelta(hours=4)
    got = _answer(engine, machine, start, end, 50, str(tmp_path / "archive"))
    assert got["downsampled"] and got["points"][0]["ts"].endswith("+02:00")
    assert got == _expected(rows, start, end, 50, machine)


def test_windows_across_hot_and_archived_rows_equal_pandas_on_all_rows(engine: Engine, tmp_path) -> None:
    machine, rows = _store(engine, 3000)
    url = str(tmp_path / "archive")
    rollups.refresh(engine, archive_url=url)
    archive.run(engine, url=url, before=START + timedelta(hours=24))
    with engine.connect() as conn:
        assert archive.files_for(conn, machine_ids=[machine], start=START, end=None)
    for first, minutes, points in [(0, 3000, 200), (1000, 1000, 100), (1400, 30, 100), (0, 3000, 10)]:
        start = START + timedelta(minutes=first)
        end = start + timedelta(minutes=minutes)
        got = _answer(engine, machine, start, end, points, url)
        assert got == _expected(rows, start, end, points, machine), (first, minutes, points)
