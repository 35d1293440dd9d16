"""Incoming-webhook receivers that misbehave (a technician may name any URL): each attempt ends within
its deadline with a reason, the router reads no more than it needs, and the other rows are delivered."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from api import policy, routing
from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import OutboxMessage, utcnow
from tests.api.hostile_receiver import ENDLESS_CAP, HostileReceiver
from tests.api.routing_support import SECRET, approved_offers, settings_for
from tests.api.support import add_prediction, build_world
from tests.sales.test_notifications import IncomingWebhook

BEHAVIOURS = ("endless_ok", "endless_error", "drip_headers", "hang_up", "redirect", "silent")


@pytest.fixture
def receivers():
    """The hostile receivers by behaviour, the host a redirect points to, and a well-behaved receiver."""
    elsewhere, good = IncomingWebhook(), IncomingWebhook()
    hostile = {
        name: HostileReceiver(name, redirect_to=elsewhere.url, silent_s=3.0, drip_s=0.05)
        for name in BEHAVIOURS
    }
    yield hostile, elsewhere, good
    for receiver in [*hostile.values(), elsewhere, good]:
        receiver.stop()


def _subscribe(world, url: str) -> str:
    """Subscribe the technician's incoming webhook at `url`; its outbox destination."""
    body = {"customer_id": world.customers["acme"], "channel": "webhook", "address": url}
    with world.client() as client:
        answer = client.post(
            f"{API_PREFIX}/notifications/subscriptions", json=body, headers=world.headers("tech")
        )
    assert answer.status_code == 201
    return f"notify-webhook:{answer.json()['id']}"


def test_misbehaving_receivers_fail_with_a_reason_and_the_rest_is_delivered(database_url, receivers) -> None:
    hostile, elsewhere, good = receivers
    world = build_world(
        database_url, route_timeout_s=1.0, alert_escalate_after_min=10**6, webhook_allow_networks="127.0.0.1"
    )
    destinations = {name: _subscribe(world, receiver.url) for name, receiver in hostile.items()}
    destinations["good"] = _subscribe(world, good.url)  # queued last: the router must get past the others
    add_prediction(world.engine, world.machines["acme"][2], risk=0.92, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())

    report = routing.deliver_due(engine=world.engine, settings=world.settings)

    with session(world.engine) as sess:
        rows = {row.destination: row for row in sess.scalars(select(OutboxMessage))}
    outcome = {name: (rows[dest].status, rows[dest].last_error or "") for name, dest in destinations.items()}
    assert (report.claimed, report.delivered, report.retried) == (7, 2, 5), outcome
    assert outcome["good"] == ("delivered", "") and len(good.bodies) == 1
    assert outcome["endless_ok"] == ("delivered", ""), "a 2xx is success; its body is never read"
    status, error = outcome["endless_error"]
    assert status == "pending" and error.startswith("HTTP 500: xxx") and len(error) <= 220
    assert outcome["redirect"][1].startswith("HTTP 307") and elsewhere.posts == 0, (
        "redirects are not followed"
    )
    assert "RemoteProtocolError" in outcome["hang_up"][1]
    assert "ReadTimeout" in outcome["silent"][1]
    assert "3 s" in outcome["drip_headers"][1], outcome["drip_headers"]
    for name in ("endless_ok", "endless_error", "drip_headers"):
        assert hostile[name].cut_off and hostile[name].sent < ENDLESS_CAP, name
    assert all(receiver.requests == 1 for receiver in hostile.values())


def test_an_error_answer_with_nul_and_non_utf8_bytes_is_kept_readable_and_retried(engine: Engine) -> None:
    """PostgreSQL stores no NUL in text: the failure could not be written, and the row never left pending."""
    hostile = HostileReceiver("binary_error")
    settings = settings_for(webhook_url=hostile.url, webhook_secret=SECRET)
    approved_offers(engine, settings)
    try:
        report = routing.deliver_due(engine=engine, settings=settings)
    finally:
        hostile.stop()

    assert (report.claimed, report.retried) == (1, 1)
    with session(engine) as sess:
        [row] = sess.scalars(select(OutboxMessage))
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "HTTP 500: " + "crash dump \ufffd\ufffd " * 3 + "crash dump \ufffd\ufffd"


@pytest.mark.expect_logged_errors  # the dead letter
def test_a_receiver_answering_gone_is_dead_lettered_at_once_and_not_found_is_retried(database_url) -> None:
    """410 is Standard Webhooks' (and Slack's, Teams') "this endpoint is deleted, stop"; 404 may pass."""
    gone, missing = (
        IncomingWebhook(fail_first=99, fail_status=410),
        IncomingWebhook(fail_first=99, fail_status=404),
    )
    try:
        world = build_world(
            database_url,
            route_timeout_s=2.0,
            alert_escalate_after_min=10**6,
            webhook_allow_networks="127.0.0.1",
        )
        to_gone, to_missing = _subscribe(world, gone.url), _subscribe(world, missing.url)
        add_prediction(world.engine, world.machines["acme"][2], risk=0.92, mode="seal_leak", hours_ahead=20)
        policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())

        report = routing.deliver_due(engine=world.engine, settings=world.settings)
    finally:
        gone.stop()
        missing.stop()

    with session(world.engine) as sess:
        rows = {row.destination: row for row in sess.scalars(select(OutboxMessage))}
    assert (report.dead, report.retried) == (1, 1)
    assert (rows[to_gone].status, rows[to_gone].attempts) == ("dead", 1)
    assert rows[to_gone].last_error.startswith("HTTP 410"), rows[to_gone].last_error
    assert "gone" in rows[to_gone].last_error
    assert (rows[to_missing].status, rows[to_missing].last_error) == ("pending", "HTTP 404: ")
