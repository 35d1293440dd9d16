"""The same subscription sent twice at once over HTTP is stored once; the later request is answered with it.

On PostgreSQL both requests can look for the subscription before either stores it. The test makes that
happen every time: a third connection holds the table in SHARE mode, which lets both requests read and stops
both at their INSERT, until both wait there. On SQLite the API's writes take the database's write lock at
BEGIN, so the two requests run one after the other; the test holds that lock while both start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import func, select, text

from api.app import API_PREFIX, create_app
from fleet.db import for_writing, session
from fleet.tables import NotificationSubscription
from tests import services
from tests.api.support import World, build_world, served

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"


@contextmanager
def inserts_held(world: World, requests: int) -> Iterator[None]:
    """Stop the subscriptions' inserts while the block runs, and after it until `requests` wait for them."""
    with for_writing(world.engine).connect() as holder:
        if world.engine.dialect.name == "sqlite":
            holder.execute(text("SELECT 1"))  # its BEGIN IMMEDIATE takes the write lock
            yield
        else:
            holder.execute(text("LOCK TABLE notification_subscriptions IN SHARE MODE"))
            yield
            for _ in range(600):
                if services.waiting_on_lock(world.engine, "relation") >= requests:
                    break
                time.sleep(0.05)
            else:
                pytest.fail(f"fewer than {requests} requests ever waited to insert")
        holder.rollback()


@pytest.mark.parametrize(
    "body",
    [
        {"channel": "email", "address": "tech@oem.example", "min_severity": "high"},
        {"channel": "webhook", "address": "http://127.0.0.1:9/hooks/a"},
    ],
    ids=["email", "webhook"],
)
def test_the_same_subscription_twice_at_once_is_stored_once(database_url: str, body: dict) -> None:
    """Before: both requests were answered 201 and two identical subscriptions were stored."""
    world = build_world(database_url, webhook_allow_networks="127.0.0.1")
    tech = world.headers("tech")
    bodies = [body, body | {"address": body["address"].upper()} if body["channel"] == "email" else body]
    with served(create_app(world.settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        assert client.get(f"{API_PREFIX}/me", headers=tech).is_success  # the key cached
        answers: list[httpx.Response] = []
        sends = [
            threading.Thread(target=lambda b=b: answers.append(client.post(SUBSCRIBE, json=b, headers=tech)))
            for b in bodies
        ]
        with inserts_held(world, requests=2):
            for send in sends:
                send.start()
        for send in sends:
            send.join()
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    with session(world.engine) as sess:
        assert sess.scalar(select(func.count()).select_from(NotificationSubscription)) == 1
