"""Notification webhooks reach public addresses only, unless the admin allows a host or network
(SERVICECAST_WEBHOOK_ALLOW_NETWORKS): a technician's URL must not make the router POST to its own host,
the cloud metadata service or the private network."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from api import delivery, egress, policy, routing
from api.app import API_PREFIX
from fleet.db import session
from fleet.settings import Settings
from fleet.tables import NotificationSubscription, OutboxMessage, utcnow
from tests.api.support import add_prediction, build_world
from tests.sales.test_notifications import IncomingWebhook

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"
REFUSED_LITERALS = [
    "http://127.0.0.1:9/hooks",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hooks",
    "http://10.20.30.40/hooks",
    "http://0.0.0.0:9/hooks",
    "http://[::ffff:127.0.0.1]:9/hooks",
    "http://[2002:7f00:1::1]:9/hooks",  # 6to4: IPv6 packets carried to the IPv4 address inside, 127.0.0.1
    "http://[2002:a9fe:a9fe::]/latest/meta-data/",  # 6to4 of 169.254.169.254
    # IPv4's old forms, which the resolver reads as addresses: subscribed, they were refused only when sent.
    "http://2130706433:9/hooks",
    "http://0x7f000001:9/hooks",
    "http://127.1:9/hooks",
    "http://169.254.43518/latest/meta-data/",
]


@pytest.fixture
def hook():
    receiver = IncomingWebhook()
    yield receiver
    receiver.stop()


def _world(database_url: str, **settings: object):
    return build_world(database_url, route_timeout_s=2.0, alert_escalate_after_min=10**6, **settings)


def _notify(world, addresses: list[str]) -> dict[str, OutboxMessage]:
    """Subscriptions stored as they are (made before the check, or names), one alert, one router pass."""
    with session(world.engine) as sess:
        for address in addresses:
            sess.add(
                NotificationSubscription(
                    user_id=world.users["tech"],
                    customer_id=world.customers["acme"],
                    channel="webhook",
                    address=address,
                )
            )
    add_prediction(world.engine, world.machines["acme"][2], risk=0.92, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
    routing.deliver_due(engine=world.engine, settings=world.settings)
    with session(world.engine) as sess:
        subs = {s.id: s.address for s in sess.scalars(select(NotificationSubscription))}
        rows = sess.scalars(select(OutboxMessage)).all()
        return {subs[int(row.destination.rsplit(":", 1)[1])]: row for row in rows}


def test_literal_local_addresses_are_refused_when_subscribing(database_url) -> None:
    world = _world(database_url)
    with world.client() as client:
        for address in REFUSED_LITERALS:
            body = {"customer_id": world.customers["acme"], "channel": "webhook", "address": address}
            answer = client.post(SUBSCRIBE, json=body, headers=world.headers("tech"))
            assert answer.status_code == 422, address
            assert answer.json()["error"] == "invalid_input"
            assert "SERVICECAST_WEBHOOK_ALLOW_NETWORKS" in answer.json()["detail"], answer.json()
            assert " a unspecified " not in answer.json()["detail"]  # 0.0.0.0 is "an unspecified address"
    with session(world.engine) as sess:
        assert sess.scalars(select(NotificationSubscription)).all() == []


def test_an_allowed_network_may_be_subscribed_and_is_delivered_to(database_url, hook) -> None:
    world = _world(database_url, webhook_allow_networks="10.0.0.0/8, 127.0.0.0/8")
    with world.client() as client:
        body = {"customer_id": world.customers["acme"], "channel": "webhook", "address": hook.url}
        assert client.post(SUBSCRIBE, json=body, headers=world.headers("tech")).status_code == 201
    add_prediction(world.engine, world.machines["acme"][2], risk=0.92, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())

    routing.deliver_due(engine=world.engine, settings=world.settings)

    assert hook.posts == 1
    with session(world.engine) as sess:
        assert sess.scalars(select(OutboxMessage.status)).all() == ["delivered"]


@pytest.mark.expect_logged_errors  # the dead letters
def test_stored_or_named_local_addresses_are_dead_lettered_with_the_reason_and_never_posted_to(
    database_url, hook
) -> None:
    world = _world(database_url)
    port = hook.url.split(":")[2].split("/")[0]
    named = f"http://localhost:{port}/hooks/abc"  # a name: it passes the check at subscription

    rows = _notify(world, [hook.url, named, "http://169.254.169.254/latest/meta-data/"])

    assert hook.posts == 0
    outcome = {address: (row.status, row.attempts, row.last_error) for address, row in rows.items()}
    assert outcome[hook.url] == (
        "dead",
        1,
        "refused: 127.0.0.1 is a loopback address, not allowed by SERVICECAST_WEBHOOK_ALLOW_NETWORKS",
    )
    status, attempts, error = outcome[named]
    assert (status, attempts) == ("dead", 1) and error.startswith("refused: localhost resolves to ")
    assert error.endswith(", a loopback address, not allowed by SERVICECAST_WEBHOOK_ALLOW_NETWORKS")
    assert outcome["http://169.254.169.254/latest/meta-data/"][::2] == (
        "dead",
        "refused: 169.254.169.254 is a link-local address, not allowed by SERVICECAST_WEBHOOK_ALLOW_NETWORKS",
    )


def test_an_allowed_host_name_is_delivered_to(database_url, hook) -> None:
    world = _world(database_url, webhook_allow_networks="LocalHost")
    port = hook.url.split(":")[2].split("/")[0]

    rows = _notify(world, [f"http://localhost:{port}/hooks/abc"])

    assert [row.status for row in rows.values()] == ["delivered"] and hook.posts == 1


def test_the_address_the_connection_reaches_is_checked_before_anything_is_sent(hook) -> None:
    """A name may resolve anew between the check and the connection (DNS rebinding)."""
    rules = egress.Policy(())

    def check_peer(address: str) -> None:
        if problem := rules.problem(address):
            raise egress.Refused(problem)

    with httpx.Client(timeout=2.0) as client, pytest.raises(egress.Refused, match="loopback"):
        delivery.post_incoming_webhook(client, url=hook.url, text="hello", check_peer=check_peer)
    assert hook.posts == 0


@pytest.mark.parametrize("value", ["10.0.0.0/33", "http://hooks.example", "a b", "*.example.com"])
def test_a_bad_allow_list_entry_is_refused_at_start_up(value: str) -> None:
    with pytest.raises(ValidationError, match="webhook_allow_networks"):
        Settings(webhook_allow_networks=value)
