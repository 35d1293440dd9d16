"""Unsubscribing one rule silences only that rule: an alert event another live subscription still wants at the
same address goes out once, whether the deleted rule's message was queued or already sent; an event no live
subscription covers at send time goes nowhere."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api import auth, policy
from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import OutboxMessage, utcnow
from tests.api.support import World, add_prediction
from tests.sales import test_notification_duplicates, test_notifications
from tests.sales.test_notification_duplicates import _world
from tests.sales.test_notifications import _route_all

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"
sink = test_notifications.sink  # a real SMTP server (aiosmtpd)
hook = test_notification_duplicates.hook  # a local incoming webhook


def _subscribe_twice(world: World, hook_url: str) -> dict[str, list[int]]:
    """The team mailbox and channel webhook, subscribed first by the technician (every customer), then by
    acme's account manager (acme): the technician's are the older, so an acme alert is queued under them."""
    ids: dict[str, list[int]] = {"tech": [], "am-acme": []}
    with world.client() as client:
        for who, scope in (("tech", {}), ("am-acme", {"customer_id": world.customers["acme"]})):
            for channel, address in (("email", "Team@OEM.example"), ("webhook", hook_url)):
                body = scope | {"channel": channel, "address": address}
                answer = client.post(SUBSCRIBE, json=body, headers=world.headers(who))
                assert answer.status_code == 201, answer.text
                ids[who].append(answer.json()["id"])
    return ids


def _unsubscribe(world: World, who: str, ids: list[int]) -> None:
    with world.client() as client:
        for sub_id in ids:
            assert client.delete(f"{SUBSCRIBE}/{sub_id}", headers=world.headers(who)).status_code == 204


def _critical_alert_queued(world: World) -> None:
    add_prediction(world.engine, world.machines["acme"][2], risk=0.92, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())


def _statuses(world: World) -> list[str]:
    with session(world.engine) as sess:
        return sorted(sess.scalars(select(OutboxMessage.status).where(OutboxMessage.offer_id.is_(None))))


@pytest.mark.parametrize("stop", ["unsubscribed", "user disabled"])
def test_a_queued_alert_still_reaches_an_address_another_live_subscription_covers(
    database_url, sink, hook, stop
):
    """Before: the technician's unsubscribing (or leaving) cancelled the queued e-mail and post the account
    manager's subscriptions still wanted: the team heard nothing of the alert."""
    world = _world(database_url, sink)
    ids = _subscribe_twice(world, hook.url)
    _critical_alert_queued(world)
    if stop == "unsubscribed":
        _unsubscribe(world, "tech", ids["tech"])
    else:
        assert auth.set_disabled(engine=world.engine, name="tech", disabled=True)

    _route_all(world)

    assert [m["To"].lower() for m in sink.messages] == ["team@oem.example"]
    assert len(hook.bodies) == 1
    assert _statuses(world) == ["delivered", "delivered"]
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())  # a pass again adds nothing
    _route_all(world)
    assert len(sink.messages) == len(hook.bodies) == 1


def test_a_sent_alert_is_not_sent_again_when_the_subscription_it_went_by_is_deleted(database_url, sink, hook):
    """Before: the next pass, looking back over recent events, queued the alert again for the account
    manager's subscriptions: a second e-mail and post to the team."""
    world = _world(database_url, sink)
    ids = _subscribe_twice(world, hook.url)
    _critical_alert_queued(world)
    _route_all(world)
    _unsubscribe(world, "tech", ids["tech"])

    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
    _route_all(world)

    assert [m["To"].lower() for m in sink.messages] == ["team@oem.example"]
    assert len(hook.bodies) == 1


@pytest.mark.parametrize("gone", ["every subscription", "the user of the other"])
def test_a_queued_alert_no_live_subscription_covers_is_cancelled(database_url, sink, hook, gone):
    world = _world(database_url, sink)
    ids = _subscribe_twice(world, hook.url)
    _critical_alert_queued(world)
    _unsubscribe(world, "tech", ids["tech"])
    if gone == "every subscription":
        _unsubscribe(world, "am-acme", ids["am-acme"])
    else:
        assert auth.set_disabled(engine=world.engine, name="am-acme", disabled=True)

    _route_all(world)

    assert sink.messages == [] and hook.bodies == []
    assert _statuses(world) == ["cancelled", "cancelled"]
