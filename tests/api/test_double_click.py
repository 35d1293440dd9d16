"""A double click: the same transition sent twice at once over HTTP is done once; the other answer is 409.

On PostgreSQL two requests can both read the object's old state before either writes. The test makes that
happen every time: a third connection holds the object's row until both requests wait on it.
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
from fleet.db import session
from fleet.tables import Alert, Offer, OutboxMessage, WorkflowEvent
from tests.api.support import World, build_world, served

ACTIONS = {
    "ack": ("alert", Alert, "tech", None, "acknowledged"),
    "resolve": ("alert", Alert, "tech", {"finding": "confirmed_fault"}, "resolved"),
    "approve": ("offer", Offer, "am-acme", {}, "approved"),
    "reject": ("offer", Offer, "am-acme", {"reason": "not now"}, "rejected"),
}


@pytest.fixture
def world(postgres_url: str) -> World:
    return build_world(postgres_url, webhook_url="http://127.0.0.1:9/crm")


@contextmanager
def row_held(world: World, table, row_id: int, waiters: int) -> Iterator[None]:
    """Hold the row's lock while the block runs, until `waiters` other sessions wait for a lock."""
    with world.engine.connect() as holder:
        holder.execute(select(table.id).where(table.id == row_id).with_for_update())
        yield
        with world.engine.connect() as watcher:
            # This database's sessions only: another test's, run beside this one, may wait for a lock too.
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            for _ in range(600):
                if watcher.execute(waiting).scalar() >= waiters:
                    break
                watcher.rollback()  # the statistics are a snapshot per transaction
                time.sleep(0.05)
            else:
                pytest.fail(f"fewer than {waiters} requests ever waited for the row")
        holder.rollback()


@pytest.mark.parametrize("action", list(ACTIONS))
def test_the_same_transition_twice_at_once_is_done_once(world: World, action: str) -> None:
    kind, table, who, body, state = ACTIONS[action]
    object_id = (world.alerts if kind == "alert" else world.offers)["acme"][0]
    url = f"{API_PREFIX}/{kind}s/{object_id}/{action}"
    with served(create_app(world.settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        if action == "resolve":
            assert client.post(f"{API_PREFIX}/alerts/{object_id}/ack", headers=world.headers(who)).is_success
        assert client.get(f"{API_PREFIX}/me", headers=world.headers(who)).is_success  # the key cached
        answers: list[httpx.Response] = []
        clicks = [
            threading.Thread(
                target=lambda: answers.append(client.post(url, json=body, headers=world.headers(who)))
            )
            for _ in range(2)
        ]
        with row_held(world, table, object_id, waiters=2):
            for click in clicks:
                click.start()
        for click in clicks:
            click.join()
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 409).json()
    assert refused == {
        "error": "conflict",
        "detail": f"cannot {action_words(action)} {kind} {object_id}: it is {state}",
    }
    with session(world.engine) as sess:
        assert sess.get(table, object_id).status == state
        logged = select(func.count()).where(
            WorkflowEvent.subject == kind,
            WorkflowEvent.subject_id == object_id,
            WorkflowEvent.action == state,
        )
        assert sess.scalar(logged) == 1
        if action == "approve":
            assert sess.scalar(select(func.count()).where(OutboxMessage.offer_id == object_id)) == 1


def action_words(action: str) -> str:
    """The verb the 409 uses."""
    return {"ack": "acknowledge"}.get(action, action)
