"""Console sessions over HTTP: server-side sessions, logout, expiry, revocation, CSRF, sign-in throttling."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from api.app import create_app
from api.console import actions as console_actions
from api.console import admin_screens
from api.console import pages as console_pages
from fleet.db import session
from fleet.settings import get_settings
from fleet.tables import Alert, WorkflowEvent
from servicecast import cli
from tests.api.support import NOW, World, build_world

COOKIE = "servicecast_session"
SETTINGS = {
    "webhook_url": "http://127.0.0.1:9/crm",
    "console_session_idle_min": 30,
    "console_session_max_h": 8,
    "console_sign_in_max_failures": 3,
    "console_sign_in_window_min": 10,
}


@dataclass
class Clock:
    """The time the app's console reads, moved by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def world(database_url: str) -> World:
    return build_world(database_url, **SETTINGS)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def client(world: World, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(world.settings)) as client:
        client.app.state.clock = clock
        yield client


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client: TestClient, world: World, who: str) -> tuple[str, str]:
    """Sign in through the form; the session cookie and the CSRF token of the page it lands on."""
    client.cookies.clear()
    home = client.post("/login", data={"api_key": world.tokens[who]})
    assert home.status_code == 200, home.text
    return client.cookies[COOKIE], csrf_token(home.text)


def heading(html: str) -> str:
    return re.sub(r"<[^>]+>", "", re.search(r"<h1>(.*?)</h1>", html, re.S).group(1)).strip()


def session_hashes(world: World) -> list[str]:
    with session(world.engine) as sess:
        return list(sess.scalars(text("SELECT id_hash FROM console_sessions")))


def alert_status(world: World, alert_id: int) -> str:
    with session(world.engine) as sess:
        return sess.get(Alert, alert_id).status


def test_the_cookie_holds_a_random_session_id_stored_only_as_its_hash(
    client: TestClient, world: World
) -> None:
    response = client.post("/login", data={"api_key": world.tokens["tech"]}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.cookies[COOKIE]
    assert world.tokens["tech"] not in response.headers["set-cookie"]
    assert session_hashes(world) == [hashlib.sha256(cookie.encode()).hexdigest()]
    attributes = [a.strip().lower() for a in response.headers["set-cookie"].split(";")[1:]]
    assert {"httponly", "samesite=lax", "path=/"} <= set(attributes)
    assert "secure" not in attributes  # plain http, as in the local demo


def test_a_cookie_replayed_after_logout_gets_the_sign_in_page_with_401(
    client: TestClient, world: World
) -> None:
    cookie, token = sign_in(client, world, "tech")
    assert client.get("/alerts").status_code == 200
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert session_hashes(world) == []
    client.cookies.set(COOKIE, cookie)
    replay = client.get("/alerts", follow_redirects=False)
    assert (replay.status_code, heading(replay.text)) == (401, "Sign in")
    assert "session has ended" in replay.text and 'name="next" value="/alerts"' in replay.text
    alert_id = world.alerts["acme"][0]
    client.cookies.set(COOKIE, cookie)
    acted = client.post(f"/alerts/{alert_id}/ack", data={"csrf_token": token}, follow_redirects=False)
    assert acted.status_code == 401 and alert_status(world, alert_id) == "open"


@pytest.mark.parametrize(
    "headers",
    [{"origin": "https://evil.example"}, {"origin": "null"}, {"sec-fetch-site": "cross-site"}],
    ids=["foreign-origin", "null-origin", "cross-site-fetch"],
)
def test_a_form_posted_from_another_site_is_refused(
    client: TestClient, world: World, headers: dict[str, str]
) -> None:
    _, token = sign_in(client, world, "tech")
    alert_id = world.alerts["acme"][0]
    refused = client.post(f"/alerts/{alert_id}/ack", data={"csrf_token": token}, headers=headers)
    assert (refused.status_code, heading(refused.text)) == (403, "Not allowed")
    assert alert_status(world, alert_id) == "open"
    login = client.post("/login", data={"api_key": world.tokens["admin"]}, headers=headers)
    assert login.status_code == 403
    same = {"origin": "http://testserver", "sec-fetch-site": "same-origin"}
    done = client.post(f"/alerts/{alert_id}/ack", data={"csrf_token": token}, headers=same)
    assert done.status_code == 200 and alert_status(world, alert_id) == "acknowledged"


def test_every_console_form_without_its_token_is_refused(client: TestClient, world: World) -> None:
    _, token = sign_in(client, world, "admin")
    routes = [*console_actions.router.routes, *console_pages.router.routes, *admin_screens.router.routes]
    posts = [r.path for r in routes if "POST" in getattr(r, "methods", ()) and r.path != "/login"]
    assert "/admin/quarantine/replay" in posts
    assert len(posts) >= 11
    for path in posts:
        url = re.sub(r"\{[^}]+\}", "1", path)
        for data in ({}, {"csrf_token": ""}, {"csrf_token": token[:-1]}, {"csrf_token": "é" * 8}):
            answer = client.post(url, data=data, follow_redirects=False)
            assert answer.status_code == 403, (path, data, answer.status_code)
    assert client.get("/admin").status_code == 200  # the refused logout ended nothing


def test_every_form_on_the_pages_carries_the_session_token(client: TestClient, world: World) -> None:
    _, token = sign_in(client, world, "admin")
    pages = ("/admin", "/alerts", f"/alerts/{world.alerts['acme'][0]}", f"/offers/{world.offers['acme'][0]}")
    for path in pages:
        forms = re.findall(r'<form [^>]*method="post".*?</form>', client.get(path).text, re.S)
        assert forms, path
        for form in forms:
            assert f'name="csrf_token" value="{token}"' in form, (path, form[:80])


def test_a_session_ends_after_its_idle_time_and_at_its_absolute_limit(
    client: TestClient, world: World, clock: Clock
) -> None:
    sign_in(client, world, "tech")
    for minutes, status in ((25, 200), (25, 200), (29, 200), (31, 401)):
        clock.advance(minutes=minutes)
        assert client.get("/alerts", follow_redirects=False).status_code == status, minutes
    sign_in(client, world, "tech")
    for step in range(1, 25):  # active every 20 minutes, yet out after 8 hours
        clock.advance(minutes=20)
        expected = 200 if step * 20 < 8 * 60 else 401
        assert client.get("/alerts", follow_redirects=False).status_code == expected, step


def test_revoking_keys_in_the_console_ends_the_users_sessions(client: TestClient, world: World) -> None:
    tech = TestClient(client.app)
    sign_in(tech, world, "tech")
    assert tech.get("/alerts").status_code == 200
    _, token = sign_in(client, world, "admin")
    asked = client.post("/admin/users/tech/revoke", data={"csrf_token": token})
    assert "Revoke every API key of tech?" in asked.text
    assert tech.get("/alerts", follow_redirects=False).status_code == 200  # not before it is confirmed
    client.post("/admin/users/tech/revoke", data={"csrf_token": token, "confirmed": "yes"})
    assert tech.get("/alerts", follow_redirects=False).status_code == 401


def test_revoking_keys_with_the_cli_ends_the_users_sessions(
    client: TestClient, world: World, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(client, world, "am-acme")
    assert client.get("/offers").status_code == 200
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    get_settings.cache_clear()
    result = CliRunner().invoke(cli.app, ["users", "revoke", "am-acme"])
    assert result.exit_code == 0, result.output
    assert client.get("/offers", follow_redirects=False).status_code == 401


def test_an_https_public_url_gives_a_secure_host_prefixed_cookie(world_url: str) -> None:
    world = build_world(world_url, public_url="https://console.example")
    with TestClient(create_app(world.settings), base_url="https://console.example") as client:
        response = client.post("/login", data={"api_key": world.tokens["tech"]}, follow_redirects=False)
        name, _, rest = response.headers["set-cookie"].partition("=")
        attributes = {a.strip().lower().partition("=")[0] for a in rest.split(";")[1:]}
        assert name == "__Host-servicecast_session"
        assert {"secure", "httponly", "path", "samesite"} <= attributes and "domain" not in attributes
        assert "path=/;" in response.headers["set-cookie"].lower().replace(" ", "") + ";"
        assert client.get("/alerts").status_code == 200


def test_repeated_failed_sign_ins_from_one_client_get_429_for_a_while(
    client: TestClient, world: World, clock: Clock
) -> None:
    for _ in range(3):
        assert client.post("/login", data={"api_key": "sc_abc_wrong"}).status_code == 401
        clock.advance(minutes=1)
    locked = client.post("/login", data={"api_key": world.tokens["tech"]}, follow_redirects=False)
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert 0 < int(locked.headers["retry-after"]) <= 10 * 60
    elsewhere = TestClient(client.app, client=("203.0.113.9", 50000))
    other = elsewhere.post("/login", data={"api_key": world.tokens["tech"]}, follow_redirects=False)
    assert other.status_code == 303
    clock.advance(minutes=8)  # the first failure has left the 10-minute window
    again = client.post("/login", data={"api_key": world.tokens["tech"]}, follow_redirects=False)
    assert again.status_code == 303


def test_sign_ins_and_failures_are_in_the_audit_trail(client: TestClient, world: World) -> None:
    assert client.post("/login", data={"api_key": "sc_0a1b2c3d4e5f_wrong"}).status_code == 401
    sign_in(client, world, "tech")
    with session(world.engine) as sess:
        events = sess.scalars(
            select(WorkflowEvent).where(WorkflowEvent.action.in_(("sign_in", "sign_in_failed")))
        ).all()
        rows = [(e.action, e.subject, e.subject_id, e.actor_id, e.data.get("client")) for e in events]
        texts = [str(e.data) for e in events]
    tech = world.users["tech"]
    assert rows == [
        ("sign_in_failed", "user", None, None, "testclient"),
        ("sign_in", "user", tech, tech, "testclient"),
    ]
    assert "0a1b2c3d4e5f" in texts[0] and "wrong" not in texts[0]
    assert world.tokens["tech"].split("_", 2)[2] not in texts[1]
