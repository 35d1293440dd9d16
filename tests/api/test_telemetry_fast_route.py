"""The telemetry range's plain Starlette route answers every request as the FastAPI route behind it does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import API_PREFIX, create_app
from api.routers import fleet
from tests.api.support import World, build_world, store_minutes

START = datetime(2026, 11, 1, tzinfo=UTC)
PATH = API_PREFIX + fleet.TELEMETRY_PATH


@pytest.fixture
def world(database_url: str) -> World:
    """Six machines, a user per role, 600 minutes of telemetry on acme's first; 2 days, 600 points at most."""
    world = build_world(database_url, api_telemetry_max_window_days=2, api_telemetry_max_points=600)
    store_minutes(world, START, 600, lambda i: {"vibration": (i % 17) * 0.37 + 0.25, "temp": 60 + (i % 5)})
    return world


def _without_fast_route(app: FastAPI) -> FastAPI:
    """The app as it was before the fast route: the FastAPI route answers."""
    kept = [
        route
        for route in app.router.routes
        if getattr(route, "endpoint", None) is not fleet.fast_machine_telemetry
    ]
    assert len(kept) == len(app.router.routes) - 1
    app.router.routes[:] = kept
    return app


def _cases(world: World) -> list[tuple[str, str, str | None]]:
    """(method, path with query, who) for every kind of answer: windows, 401, 403, 404, 405 and the 422s."""
    acme, globex = world.machines["acme"][0], world.machines["globex"][0]
    own = PATH.format(machine_id=acme)
    window = "start=2026-11-01T00:00:00Z&end=2026-11-01T10:00:00Z"
    return [
        ("GET", f"{own}?{window}", "tech"),  # 600 rows into 500 buckets
        ("GET", f"{own}?{window}&max_points=10", "admin"),
        ("GET", f"{own}?start=2026-11-01T00:00:00Z&end=2026-11-01T00:40:00Z", "tech"),  # raw rows
        ("GET", f"{own}?start=2026-11-01T02:00:00%2B02:00&end=2026-11-01T05:30:00%2B02:00", "cust-acme"),
        ("GET", f"{own}?start=2026-11-01T01:00:00-05:30&max_points=37", "tech"),  # end: a day later
        ("GET", f"{own}?start=2026-11-01T00:00:00&end=2026-11-01T03:00:00.250", "tech"),  # naive: UTC
        ("GET", f"{own}?start=2026-11-01&end=2026-11-02", "tech"),  # dates
        ("GET", f"{own}?start=1762000000&end=1762010000", "tech"),  # Unix seconds
        ("GET", f"{own}?end=2026-11-01T06:00:00Z", "tech"),  # start: a day earlier
        ("GET", f"{own}?start=2026-11-01T05:00:00Z&end=2026-11-01T05:00:00Z", "tech"),  # empty
        ("GET", f"{own}?{window}&max_points=5&max_points=50", "tech"),  # given twice: 422 by both
        ("GET", f"{own}?start=9999-12-31T00:00:00Z", "tech"),  # the end clamped
        ("GET", f"{own}?{window}&other=1", "tech"),  # an unknown parameter is ignored
        # 422: FastAPI's validation (the first problem named: path before query, query in order)
        ("GET", PATH.format(machine_id="abc") + f"?{window}", "tech"),
        ("GET", PATH.format(machine_id=0), "tech"),
        ("GET", PATH.format(machine_id=2**31), "tech"),
        ("GET", PATH.format(machine_id="1.5") + "?start=garbage", "tech"),
        ("GET", f"{own}?start=garbage&max_points=3", "tech"),
        ("GET", f"{own}?start=&end=", "tech"),
        ("GET", f"{own}?end=2026-13-01T00:00:00Z", "tech"),
        ("GET", f"{own}?{window}&max_points=9", "tech"),
        ("GET", f"{own}?{window}&max_points=ten", "tech"),
        ("GET", f"{own}?{window}&max_points=", "tech"),
        ("GET", f"{own}?{window}&max_points=10.0", "tech"),
        # 422: a reversed window and the configured limits
        ("GET", f"{own}?start=2026-11-01T05:00:00Z&end=2026-11-01T01:00:00Z", "tech"),
        ("GET", f"{own}?{window}&max_points=601", "tech"),
        ("GET", f"{own}?start=2026-11-01T00:00:00Z&end=2026-11-03T00:00:01Z", "tech"),
        # 401 before any validation, 403 for a role without telemetry:read, 404 for another tenant's
        ("GET", f"{own}?{window}", None),
        ("GET", f"{own}?start=garbage", "garbage"),
        ("GET", f"{own}?{window}", "basic"),
        ("GET", PATH.format(machine_id="abc"), "am-acme"),
        ("GET", f"{own}?{window}", "am-acme"),
        ("GET", PATH.format(machine_id=globex) + f"?{window}", "cust-acme"),
        ("GET", PATH.format(machine_id=999_999) + f"?{window}", "admin"),
        ("GET", PATH.format(machine_id=globex) + "?max_points=601", "cust-acme"),  # limits before owner
        # other methods
        ("POST", f"{own}?{window}", "tech"),
        ("HEAD", f"{own}?{window}", "tech"),
        ("PUT", own, None),
        ("GET", own + "/", "tech"),
    ]


def _headers(world: World, who: str | None) -> dict[str, str]:
    if who is None:
        return {}
    if who == "garbage":
        return {"Authorization": "Bearer not-a-key"}
    if who == "basic":
        return {"Authorization": "Basic " + world.tokens["tech"]}
    return world.headers(who)


def _answer(client: TestClient, world: World, method: str, url: str, who: str | None) -> tuple:
    response = client.request(method, url, headers=_headers(world, who), follow_redirects=False)
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "server")}
    return response.status_code, headers, response.content


def test_every_answer_of_the_fast_route_is_the_fastapi_routes_byte_for_byte(
    world: World, monkeypatch
) -> None:
    calls = []
    call = fleet._TELEMETRY_CALL
    monkeypatch.setattr(fleet, "_TELEMETRY_CALL", lambda **kwargs: calls.append(1) or call(**kwargs))
    cases = _cases(world)
    with TestClient(create_app(world.settings)) as fast:
        new = [_answer(fast, world, *case) for case in cases]
    # 12 windows, 4 refusals by the limits and 2 by the owner's check: all in the endpoint the routes share
    assert len(calls) == 18, "the fast route answered"
    with TestClient(_without_fast_route(create_app(world.settings))) as plain:
        old = [_answer(plain, world, *case) for case in cases]
    assert len(calls) == 18, "the FastAPI route does not go through the fast route"
    statuses = [status for status, _, _ in old]
    assert statuses.count(200) == 12 and {401, 403, 404, 405, 422} <= set(statuses)
    for case, before, after in zip(cases, old, new, strict=True):
        assert after == before, case


def test_the_default_window_is_the_day_to_now_on_both_routes(world: World) -> None:
    # Byte equality is impossible here: each answer's end is the moment it was asked.
    url = PATH.format(machine_id=world.machines["acme"][0])
    with TestClient(create_app(world.settings)) as fast:
        new = fast.get(url, headers=world.headers("tech"))
    with TestClient(_without_fast_route(create_app(world.settings))) as plain:
        old = plain.get(url, headers=world.headers("tech"))
    assert new.status_code == old.status_code == 200
    for body in (new.json(), old.json()):
        end, start = datetime.fromisoformat(body["end"]), datetime.fromisoformat(body["start"])
        assert end - start == timedelta(days=1) and end.tzinfo is not None
        assert abs(datetime.now(UTC) - end) < timedelta(minutes=5)
    assert {k: v for k, v in new.json().items() if k not in ("start", "end")} == {
        k: v for k, v in old.json().items() if k not in ("start", "end")
    }


def test_the_openapi_document_still_describes_the_route(world: World) -> None:
    with TestClient(create_app(world.settings)) as fast:
        spec = fast.get("/openapi.json").json()
    with TestClient(_without_fast_route(create_app(world.settings))) as plain:
        assert plain.get("/openapi.json").json() == spec
    operation = spec["paths"][PATH]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert list(parameters) == ["machine_id", "start", "end", "max_points"]
    assert parameters["machine_id"]["in"] == "path" and parameters["machine_id"]["required"] is True
    assert {parameters[name]["in"] for name in ("start", "end", "max_points")} == {"query"}
    assert parameters["max_points"]["schema"]["minimum"] == 10
    assert parameters["max_points"]["schema"]["maximum"] == 600  # the configured limit (document_limits)
    assert parameters["max_points"]["schema"]["default"] == 500
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TelemetryOut"
    }
