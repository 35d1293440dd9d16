"""The same subscription twice is the one subscription; one alert event reaches an address once, even when
two subscriptions of overlapping scope (a person's, or two people's sharing a mailbox) both cover it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from api import policy
from api.app import API_PREFIX, create_app
from fleet.db import session
from fleet.tables import NotificationSubscription, utcnow
from tests.api.routing_support import SmtpSink
from tests.api.support import World, add_prediction, build_world
from tests.console.client import ConsoleClient, flash, sign_in
from tests.sales import test_notifications
from tests.sales.test_notifications import IncomingWebhook, _route_all

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"
sink = test_notifications.sink  # a real SMTP server (aiosmtpd)


@pytest.fixture
def hook():
    receiver = IncomingWebhook()
    yield receiver
    receiver.stop()


def _world(database_url: str, sink: SmtpSink) -> World:
    # The local receiver allowed; the world's alerts of last week would escalate now: not these tests.
    return build_world(
        database_url, smtp_url=sink.url, webhook_allow_networks="127.0.0.1", alert_escalate_after_min=10**6
    )


def _critical_alert_routed(world: World) -> None:
    add_prediction(world.engine, world.machines["acme"][2], risk=0.92, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
    _route_all(world)


def _stored(world: World) -> int:
    with session(world.engine) as sess:
        return sess.scalar(select(func.count()).select_from(NotificationSubscription))


def test_the_same_subscription_again_answers_the_existing_one_and_notifies_once(
    database_url, sink, hook
) -> None:
    """Before: a second identical POST stored a second subscription, and each alert went out twice."""
    world = _world(database_url, sink)
    acme, tech = world.customers["acme"], world.headers("tech")
    mail = {"customer_id": acme, "channel": "email", "address": "tech@oem.example", "min_severity": "high"}
    webhook = {"channel": "webhook", "address": hook.url}
    with world.client() as client:
        for body in (mail, webhook):
            first = client.post(SUBSCRIBE, json=body, headers=tech)
            again = client.post(SUBSCRIBE, json=body, headers=tech)
            assert (first.status_code, again.status_code) == (201, 200)
            assert again.json() == first.json()
        # Another severity is another subscription; its alerts still reach the mailbox once (below).
        wider = client.post(SUBSCRIBE, json=mail | {"min_severity": "medium"}, headers=tech)
        assert wider.status_code == 201 and wider.json()["id"] != first.json()["id"]
    assert _stored(world) == 3

    _critical_alert_routed(world)

    assert [m["To"] for m in sink.messages] == ["tech@oem.example"]
    assert len(hook.bodies) == 1


def test_two_peoples_subscriptions_to_one_address_deliver_each_event_once(database_url, sink, hook) -> None:
    """A shared team mailbox and channel webhook, subscribed by a technician (all customers) and by acme's
    account manager (acme): one e-mail and one post per alert event, not one per subscription."""
    world = _world(database_url, sink)
    acme = world.customers["acme"]
    with world.client() as client:
        for who, scope in (("tech", {}), ("am-acme", {"customer_id": acme})):
            for channel, address in (("email", "Team@OEM.example"), ("webhook", hook.url)):
                body = scope | {"channel": channel, "address": address}
                assert client.post(SUBSCRIBE, json=body, headers=world.headers(who)).status_code == 201
            # The same mailbox however its name is cased: the domain is case-blind, and so are mail hosts.
            body = scope | {"channel": "email", "address": "team@oem.example", "min_severity": "medium"}
            assert client.post(SUBSCRIBE, json=body, headers=world.headers(who)).status_code == 201

    _critical_alert_routed(world)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())  # a pass again adds nothing
    _route_all(world)

    assert [m["To"].lower() for m in sink.messages] == ["team@oem.example"]
    assert len(hook.bodies) == 1


def test_the_console_form_sent_twice_says_it_exists_and_stores_one(database_url) -> None:
    world = build_world(database_url)
    form = {"channel": "email", "address": "tech@oem.example", "min_severity": "critical"}
    with ConsoleClient(create_app(world.settings)) as console:
        sign_in(console, world, "tech")
        first = flash(console.post("/notifications", data=form).text)
        again = flash(console.post("/notifications", data=form).text)
    assert first.startswith("Subscribed: critical alerts and up, by email to tech@oem.example.")
    assert again.startswith("Already subscribed: critical alerts and up, by email to tech@oem.example.")
    assert _stored(world) == 1
