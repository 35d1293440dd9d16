"""Telemetry for charts: raw rows for short windows, bucket means computed by the database for long ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine

from api import schemas, telemetry_view
from fleet import registry, telemetry
from fleet.db import session
from tests.api.support import World, build_world, store_minutes

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
        out = telemetry_view.window(sess, machine_id=machine, start=START, end=end, max_points=100)
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
        out = telemetry_view.window(
            sess, machine_id=machine, start=START, end=START + timedelta(minutes=60), max_points=100
        )
        empty = telemetry_view.window(sess, machine_id=machine, start=START, end=START, max_points=100)
    assert (out.rows, out.downsampled, len(out.points)) == (60, False, 60)
    assert out.points[7].readings == rows[7]["readings"]
    assert (empty.rows, empty.points) == (0, [])


def _rows(machine, readings_at) -> list[dict]:
    return [
        {
            "customer_id": machine.customer_id,
            "machine_id": machine.id,
            "seq": i + 1,
            "ts": ts,
            "readings": readings,
            "received_at": START,
        }
        for i, (ts, readings) in enumerate(readings_at)
    ]


def test_the_buckets_of_a_window_never_outnumber_max_points(engine: Engine) -> None:
    # 30 days and 1 s, as the console asks: a bucket width rounded down made a 481st bucket of 480.
    registry.add_customer(engine=engine, tenant="acme")
    machine = registry.add_machine(engine=engine, tenant="acme", code="pump-1", machine_type="pump")
    end = START + timedelta(days=30, seconds=1)
    times = [START + timedelta(minutes=i) for i in range(30 * 24 * 60 + 1)] + [
        end - timedelta(milliseconds=10)
    ]
    with engine.begin() as conn:
        telemetry.insert_telemetry(conn, _rows(machine, ((ts, {"v": 1.0}) for ts in times)))
    with session(engine) as sess:
        out = telemetry_view.window(sess, machine_id=machine.id, start=START, end=end, max_points=480)
    assert out.rows == len(times) and out.downsampled
    assert len(out.points) == 480
    assert out.points[-1].ts < end


def test_thousands_of_sensors_are_averaged_without_exceeding_the_column_limit(engine: Engine) -> None:
    # SQLite allows 2,000 result columns, PostgreSQL 1,664 target entries: one column per sensor failed.
    registry.add_customer(engine=engine, tenant="acme")
    machine = registry.add_machine(engine=engine, tenant="acme", code="pump-1", machine_type="pump")
    names = [f"s{i:04d}" for i in range(3000)]
    readings = (
        (START + timedelta(minutes=i), {n: float(i + k) for k, n in enumerate(names)}) for i in range(40)
    )
    with engine.begin() as conn:
        telemetry.insert_telemetry(conn, _rows(machine, readings))
    with session(engine) as sess:
        out = telemetry_view.window(
            sess, machine_id=machine.id, start=START, end=START + timedelta(minutes=40), max_points=10
        )
    assert out.downsampled and len(out.points) == 10
    for bucket, point in enumerate(out.points):
        assert set(point.readings) == set(names)
        # bucket b holds minutes 4b..4b+3: the mean of i + k over them is 4b + 1.5 + k
        assert point.readings["s0000"] == pytest.approx(4 * bucket + 1.5)
        assert point.readings["s2999"] == pytest.approx(4 * bucket + 1.5 + 2999)


def test_the_mean_of_the_largest_finite_readings_is_finite(engine: Engine) -> None:
    # Summed as they are, two readings of 1.7e308 overflow: inf on SQLite, an error on PostgreSQL.
    registry.add_customer(engine=engine, tenant="acme")
    machine = registry.add_machine(engine=engine, tenant="acme", code="pump-1", machine_type="pump")
    big = 1.7e308
    values = [big, big, -big, -big, big, -big, 1.5, 2.5]
    with engine.begin() as conn:
        points = ((START + timedelta(minutes=i), {"v": v, "w": 1e-300}) for i, v in enumerate(values))
        telemetry.insert_telemetry(conn, _rows(machine, points))
    with session(engine) as sess:
        out = telemetry_view.window(
            sess, machine_id=machine.id, start=START, end=START + timedelta(minutes=8), max_points=4
        )
    assert [p.readings["v"] for p in out.points] == [big, -big, 0.0, 2.0]
    assert [p.readings["w"] for p in out.points] == [0.0] * 4  # rounded to 4 decimals, as every mean


def test_a_sensor_seen_only_inside_a_long_window_is_averaged_where_it_was_read(engine: Engine) -> None:
    # Sensor names came from the window's first and last 50 rows: one read only in between was left out.
    registry.add_customer(engine=engine, tenant="acme")
    machine = registry.add_machine(engine=engine, tenant="acme", code="pump-1", machine_type="pump")
    readings = [{"v": 1.0} | ({"rare": float(i)} if 140 <= i < 150 else {}) for i in range(300)]
    with engine.begin() as conn:
        telemetry.insert_telemetry(
            conn, _rows(machine, ((START + timedelta(minutes=i), r) for i, r in enumerate(readings)))
        )
    with session(engine) as sess:
        out = telemetry_view.window(
            sess, machine_id=machine.id, start=START, end=START + timedelta(minutes=300), max_points=30
        )
    assert out.downsampled and len(out.points) == 30
    assert [p.readings["rare"] for p in out.points] == [None] * 14 + [144.5] + [None] * 15
    assert {p.readings["v"] for p in out.points} == {1.0}


@pytest.fixture
def world(database_url: str) -> World:
    """Six machines and a user per role; telemetry reads limited to 2 days and 100 points."""
    return build_world(database_url, api_telemetry_max_window_days=2, api_telemetry_max_points=100)


def test_a_window_or_a_point_count_beyond_the_limits_is_refused_with_422(world: World) -> None:
    machine = world.machines["acme"][0]
    path = f"/api/v1/machines/{machine}/telemetry"

    def query(start: datetime, end: datetime, points: int) -> str:
        return f"{path}?start={start:%Y-%m-%dT%H:%M:%SZ}&end={end:%Y-%m-%dT%H:%M:%SZ}&max_points={points}"

    with world.client() as client:
        get = lambda url: client.get(url, headers=world.headers("tech"))  # noqa: E731
        assert get(query(START, START + timedelta(days=2), 100)).status_code == 200
        too_long = get(query(START, START + timedelta(days=2, seconds=1), 100))
        assert too_long.status_code == 422
        assert too_long.json() == {
            "error": "invalid_input",
            "detail": "the window is longer than 2 days (SERVICECAST_API_TELEMETRY_MAX_WINDOW_DAYS)",
        }
        too_many = get(query(START, START + timedelta(days=1), 101))
        assert too_many.status_code == 422
        assert too_many.json()["detail"] == "max_points is above 100 (SERVICECAST_API_TELEMETRY_MAX_POINTS)"
        assert get(f"{path}?start={START:%Y-%m-%dT%H:%M:%SZ}&max_points=100").status_code == 200  # 1 day
        spec = client.get("/openapi.json").json()
        parameters = spec["paths"]["/api/v1/machines/{machine_id}/telemetry"]["get"]["parameters"]
        assert {p["name"]: p["schema"].get("maximum") for p in parameters}["max_points"] == 100


def test_a_window_whose_start_is_after_its_end_is_refused_with_422(world: World) -> None:
    path = f"/api/v1/machines/{world.machines['acme'][0]}/telemetry?max_points=100"
    with world.client() as client:
        get = lambda query: client.get(f"{path}&{query}", headers=world.headers("tech"))  # noqa: E731
        reversed_ = get("start=2026-11-01T05:00:00Z&end=2026-11-01T01:00:00Z")
        assert reversed_.status_code == 422
        assert reversed_.json() == {
            "error": "invalid_input",
            "detail": "the window's start must not be after its end",
        }
        # compared as instants: 05:00+02:00 is 03:00Z, before the end
        assert get("start=2026-11-01T05:00:00%2B02:00&end=2026-11-01T04:00:00Z").status_code == 200
        empty = get("start=2026-11-01T05:00:00Z&end=2026-11-01T05:00:00Z")  # an empty window, not reversed
        assert empty.status_code == 200 and empty.json()["rows"] == 0


def _http_window(world: World, minutes: int, points: int, readings_of) -> tuple[dict, bytes, list[dict]]:
    machine = world.machines["acme"][0]
    rows = store_minutes(world, START, minutes, readings_of)
    end = START + timedelta(minutes=minutes)
    path = (
        f"/api/v1/machines/{machine}/telemetry?start={START:%Y-%m-%dT%H:%M:%SZ}"
        f"&end={end:%Y-%m-%dT%H:%M:%SZ}&max_points={points}"
    )
    with world.client() as client:
        response = client.get(path, headers=world.headers("tech"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json(), response.content, rows


def _readings(i: int) -> dict:
    readings = {"vibration": (i % 17) * 0.37 + 0.25, "temp": 60 + (i % 5)}  # temp stored as integers
    if i % 11 == 0:
        del readings["temp"]
    if i % 13 == 0:
        readings["vibration"] = None
    return readings


def test_the_routes_bucket_means_equal_pandas_on_the_raw_rows(world: World) -> None:
    body, content, rows = _http_window(world, 600, 100, _readings)
    width = timedelta(minutes=6)
    frame = pd.DataFrame([r["readings"] for r in rows], index=[r["ts"] for r in rows]).astype(float)
    expected = frame.groupby((frame.index - START) // width).mean()
    assert (body["rows"], body["downsampled"], len(body["points"])) == (600, True, len(expected))
    for point, (bucket, means) in zip(body["points"], expected.iterrows(), strict=True):
        assert datetime.fromisoformat(point["ts"]) == START + width * bucket
        assert list(point["readings"]) == ["temp", "vibration"]
        for name, value in point["readings"].items():
            assert value == pytest.approx(round(means[name], 4), abs=1e-9), (bucket, name)
    # The bytes are those of the documented response model, as FastAPI serialised it before.
    assert schemas.TelemetryOut.model_validate_json(content).model_dump_json().encode() == content


def test_the_routes_raw_rows_are_the_stored_readings_as_floats(world: World) -> None:
    body, content, rows = _http_window(world, 40, 100, _readings)
    assert (body["rows"], body["downsampled"]) == (40, False)
    assert [p["readings"] for p in body["points"]] == [r["readings"] for r in rows]
    assert '"temp":60.0' in content.decode()  # a stored integer is answered as a float
    assert schemas.TelemetryOut.model_validate_json(content).model_dump_json().encode() == content
