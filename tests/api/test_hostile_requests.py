"""Requests a hostile or careless client sends: each gets a 4xx that names the problem, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.support import World, build_world


@pytest.fixture
def world(database_url: str) -> World:
    return build_world(database_url)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    """A client that sees a server error as the 500 a real client gets, not as the exception."""
    with TestClient(create_app(world.settings), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(
    "window",
    [
        "start=0001-01-01T00:10:00%2B01:00&end=0001-01-01T00:30:00%2B01:00",  # before year 1 in UTC
        "start=9999-12-31T20:00:00-05:00&end=9999-12-31T23:30:00-05:00&max_points=10",  # after 9999
        "start=0001-01-01T00:00:00Z&end=0001-01-30T00:00:00Z&max_points=10",  # the hour before year 1
        "end=0001-01-01T06:00:00Z",
    ],
)
def test_a_telemetry_window_at_the_ends_of_the_calendar_is_refused(
    client: TestClient, world: World, window: str
) -> None:
    path = f"/api/v1/machines/{world.machines['acme'][0]}/telemetry?{window}"
    response = client.get(path, headers=world.headers("tech"))
    assert response.status_code == 422, response.text
    assert response.json() == {
        "error": "invalid_input",
        "detail": "a window must lie between 0001-01-02 and 9999-12-31 (UTC)",
    }


@pytest.mark.parametrize(
    ("window", "start", "end"),
    [
        ("start=9999-12-31T00:00:00Z", "9999-12-31T00:00:00Z", "9999-12-31T23:59:59.999999Z"),
        ("end=0001-01-02T06:00:00Z", "0001-01-02T00:00:00Z", "0001-01-02T06:00:00Z"),
        ("start=0001-01-02T00:00:00Z&max_points=10", "0001-01-02T00:00:00Z", "0001-01-03T00:00:00Z"),
    ],
)
def test_a_default_window_end_is_cut_to_the_calendar(
    client: TestClient, world: World, window: str, start: str, end: str
) -> None:
    path = f"/api/v1/machines/{world.machines['acme'][0]}/telemetry?{window}"
    response = client.get(path, headers=world.headers("tech"))
    assert response.status_code == 200, response.text
    assert (response.json()["start"], response.json()["end"], response.json()["rows"]) == (start, end, 0)
