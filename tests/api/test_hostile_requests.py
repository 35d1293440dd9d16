"""Requests a hostile or careless client sends: each gets a 4xx that names the problem, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api import catalog_versions
from api.app import create_app
from fleet.db import session
from fleet.tables import OutboxMessage, WorkflowEvent
from tests.api.support import World, build_world


@pytest.fixture
def world(database_url: str) -> World:
    return build_world(database_url)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    """A client that sees a server error as the 500 a real client gets, not as the exception."""
    with TestClient(create_app(world.settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def unchanged_world(module_database_url: str) -> World:
    """The same world, built once a module for its requests that are refused or only read."""
    return build_world(module_database_url)


@pytest.fixture(scope="module")
def unchanged_client(unchanged_world: World) -> Iterator[TestClient]:
    """`client` on the unchanged world, for the whole module."""
    with TestClient(create_app(unchanged_world.settings), raise_server_exceptions=False) as client:
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
    unchanged_client: TestClient, unchanged_world: World, window: str
) -> None:
    path = f"/api/v1/machines/{unchanged_world.machines['acme'][0]}/telemetry?{window}"
    response = unchanged_client.get(path, headers=unchanged_world.headers("tech"))
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
    unchanged_client: TestClient, unchanged_world: World, window: str, start: str, end: str
) -> None:
    path = f"/api/v1/machines/{unchanged_world.machines['acme'][0]}/telemetry?{window}"
    response = unchanged_client.get(path, headers=unchanged_world.headers("tech"))
    assert response.status_code == 200, response.text
    assert (response.json()["start"], response.json()["end"], response.json()["rows"]) == (start, end, 0)


def _rows(world: World) -> tuple[int, ...]:
    """How many audit and outbox rows there are: a refusal adds none."""
    with session(world.engine) as sess:
        return tuple(sess.scalar(select(func.count()).select_from(t)) for t in (WorkflowEvent, OutboxMessage))


@pytest.mark.parametrize(
    ("method", "path", "body", "where"),
    [
        ("POST", "/alerts/{alert}/resolve", {"finding": "other", "text": "pump\x00ok"}, "body.text"),
        (
            "POST",
            "/alerts/{alert}/resolve",
            {"finding": "no_fault_found", "parts_used": ["a\x00"]},
            "body.parts_used.0",
        ),
        ("POST", "/offers/{offer}/approve", {"title": "Inspection\x00"}, "body.title"),
        ("POST", "/offers/{offer}/reject", {"reason": "\x00"}, "body.reason"),
        ("POST", "/offers/{offer}/reject", {"reason": "no", "\x00": 1}, "body.\x00"),
        ("DELETE", "/customers/{customer}/grants/offers?reference=clause%007", None, "query.reference"),
        ("GET", "/machines?machine_type=pump%00", None, "query.machine_type"),
        ("GET", "/audit?action=approved%00", None, "query.action"),
    ],
)
def test_a_nul_character_in_text_is_refused_and_changes_nothing(
    client: TestClient, world: World, method: str, path: str, body: dict | None, where: str
) -> None:
    ids = {
        "alert": world.alerts["acme"][0],
        "offer": world.offers["acme"][0],
        "customer": world.customers["acme"],
    }
    client.post(f"/api/v1/alerts/{ids['alert']}/ack", headers=world.headers("admin"))  # resolvable
    before = _rows(world)
    url = "/api/v1" + path.format(**ids)
    response = client.request(method, url, json=body, headers=world.headers("admin"))
    assert response.status_code == 422, response.text
    assert response.json() == {
        "error": "invalid_request",
        "detail": f"{where}: a NUL character is not allowed in text",
    }
    assert _rows(world) == before


def test_a_nul_character_behind_a_byte_order_mark_is_refused_too(client: TestClient, world: World) -> None:
    """FastAPI's reading skips a UTF-8 byte order mark (as RFC 8259 allows); the NUL check called such a body
    no JSON and let it through: a reason with NUL stored on SQLite, a 500 on PostgreSQL."""
    offer_id = world.offers["acme"][0]
    before = _rows(world)
    headers = {"content-type": "application/json", **world.headers("admin")}
    url = f"/api/v1/offers/{offer_id}/reject"
    refused = client.post(url, content=b'\xef\xbb\xbf{"reason": "no\\u0000"}', headers=headers)
    assert (refused.status_code, refused.json()) == (
        422,
        {"error": "invalid_request", "detail": "body.reason: a NUL character is not allowed in text"},
    )
    assert _rows(world) == before
    taken = client.post(url, content=b'\xef\xbb\xbf{"reason": "not now"}', headers=headers)
    assert (taken.status_code, taken.json()["reject_reason"]) == (200, "not now")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/offers?limit=1&limit=1000", "limit"),
        ("/alerts?customer_id={acme}&status=open&customer_id={globex}", "customer_id"),
        ("/audit?subject=offer&subject=alert", "subject"),
        ("/machines/{machine}/telemetry?max_points=10&max_points=20", "max_points"),  # the fast route
    ],
)
def test_a_query_parameter_given_twice_is_refused_by_name(
    unchanged_client: TestClient, unchanged_world: World, path: str, name: str
) -> None:
    """FastAPI takes the last of them: a client sending a list (customer_id=1&customer_id=2) got one
    customer's rows as if they were all; a cache or proxy may key on the first."""
    ids = {"acme": unchanged_world.customers["acme"], "globex": unchanged_world.customers["globex"]}
    url = "/api/v1" + path.format(machine=unchanged_world.machines["acme"][0], **ids)
    answer = unchanged_client.get(url, headers=unchanged_world.headers("admin"))
    assert (answer.status_code, answer.json()) == (
        422,
        {"error": "invalid_request", "detail": f"query.{name}: given more than once; send it once"},
    )


@pytest.mark.parametrize("order", ["key-first", "junk-first", "two-keys"])
def test_an_authorization_header_given_twice_is_401_whichever_comes_first(
    unchanged_client: TestClient, unchanged_world: World, order: str
) -> None:
    """Which key is the caller? The app read the first, a proxy in front may read the last."""
    key = unchanged_world.headers("am-acme")["Authorization"]
    other = unchanged_world.headers("admin")["Authorization"]
    pairs = {"key-first": [key, "Bearer junk"], "junk-first": ["Bearer junk", key], "two-keys": [key, other]}
    headers = [("Authorization", value) for value in pairs[order]]
    for path in ("/api/v1/me", f"/api/v1/machines/{unchanged_world.machines['acme'][0]}/telemetry"):
        answer = unchanged_client.get(path, headers=headers)
        assert (answer.status_code, answer.json()) == (
            401,
            {"error": "unauthorized", "detail": "Authorization header given more than once; send one key"},
        ), path


BIG = 5 * 1024 * 1024


@pytest.mark.parametrize(
    ("path", "who", "kind", "body"),
    [
        ("/api/v1/offers/{offer}/approve", "am-acme", "application/json", b'{"title": "%s"}'),
        ("/api/v1/alerts/{alert}/resolve", None, "application/json", b'{"finding": "other", "text": "%s"}'),
        ("/login", None, "application/x-www-form-urlencoded", b"api_key=%s"),
    ],
)
def test_a_body_larger_than_any_request_needs_is_refused_with_413(
    unchanged_client: TestClient, unchanged_world: World, path: str, who: str | None, kind: str, body: bytes
) -> None:
    """Read to its end before any check (the caller's key too), a body of any size had to fit in memory."""
    headers = {"Content-Type": kind, **(unchanged_world.headers(who) if who else {})}
    before = _rows(unchanged_world)
    url = path.format(offer=unchanged_world.offers["acme"][0], alert=unchanged_world.alerts["acme"][0])
    response = unchanged_client.post(url, content=body % (b"x" * BIG), headers=headers)
    assert response.status_code == 413, response.text[:300]
    assert _rows(unchanged_world) == before


def test_the_largest_catalog_a_client_may_send_fits(
    unchanged_client: TestClient, unchanged_world: World
) -> None:
    """A catalog's YAML is the largest body: at its length limit, every character escaped, it is read."""
    yaml = "\u00e9" * catalog_versions.MAX_SOURCE
    body = json.dumps({"yaml": yaml}, ensure_ascii=True).encode()
    assert len(body) > 1_000_000
    response = unchanged_client.post(
        "/api/v1/catalog/versions",
        content=body,
        headers={"Content-Type": "application/json", **unchanged_world.headers("admin")},
    )
    assert response.status_code == 422 and response.json()["error"] == "invalid_catalog_file", response.text[
        :300
    ]
