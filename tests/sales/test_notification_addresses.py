"""Subscription addresses a mail header or an HTTP client cannot carry are refused when subscribing, and a
stored one fails its notification with a reason instead of an internal error."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api import policy, routing
from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import NotificationSubscription, OutboxMessage, utcnow
from tests.api.support import add_prediction, build_world

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"
BAD = [
    ("email", "tech\x85@oem.example"),  # NEL: a line break to the email package
    ("email", "tech@oem.example\u2028bcc"),
    ("email", "te\x00ch@oem.example"),  # PostgreSQL cannot store NUL: it was a 500 there
    ("email", "tech@oem.example\x0b"),
    # One address each to the eye, more than one (or another) in the To header the router writes.
    ("email", "tech@oem.example,ops"),
    ("email", "=?utf-8?q?ops=40evil.example=2C?=tech@oem.example"),  # ops@evil.example, tech@oem.example
    ("email", "crew:tech@oem.example;"),
    ("email", "(ops@evil.example)tech@oem.example"),
    (
        "email",
        ":*c;!@ee-'2",
    ),  # Python's header parser fails on these with AttributeError, IndexError, TypeError
    ("email", "d{=_^@0,c<"),
    ("email", "(}/)..)@;"),
    ("webhook", "http://[::1/hooks"),
    ("webhook", "http://256.1.1.1/hooks"),
    ("webhook", "http://exa\x85mple.com/hooks"),
    ("webhook", "http://:80/hooks"),
    ("webhook", "https://chat.example/hooks/\x00"),
    ("webhook", "http://xn--zz.example/hooks"),  # not punycode
]
GOOD = [
    ("email", "tech@oem.example"),
    ("email", "tëch@oem.example"),
    ("webhook", "https://chat.example/h/a?b=c"),
]


@pytest.fixture
def world(database_url):
    return build_world(database_url, route_timeout_s=2.0, alert_escalate_after_min=10**6)


def test_addresses_no_header_or_client_can_carry_are_422(world) -> None:
    customer = world.customers["acme"]
    with world.client() as client:
        for channel, address in BAD:
            body = {"customer_id": customer, "channel": channel, "address": address}
            answer = client.post(SUBSCRIBE, json=body, headers=world.headers("tech"))
            assert (answer.status_code, answer.json()["error"]) == (422, "invalid_request"), address
        for channel, address in GOOD:
            body = {"customer_id": customer, "channel": channel, "address": address}
            assert client.post(SUBSCRIBE, json=body, headers=world.headers("tech")).status_code == 201
    with session(world.engine) as sess:
        assert sorted(sess.scalars(select(NotificationSubscription.address))) == sorted(a for _, a in GOOD)


@pytest.mark.parametrize(
    ("channel", "address", "error"),
    [
        ("webhook", "http://[::1/x", "invalid URL: Invalid port: ':1'"),
        (
            "email",
            "=?utf-8?q?ops=40evil.example=2C?=tech@oem.example",
            "address: a mail to it would go to ops@evil.example, tech@oem.example",
        ),
        (
            "email",
            ":*c;!@ee-'2",
            "address: a mail header cannot carry it (AttributeError in Python's email package)",
        ),
    ],
)
def test_a_stored_address_the_checks_refuse_fails_with_a_reason(
    database_url, channel, address, error
) -> None:
    world = build_world(database_url, smtp_url="smtp://127.0.0.1:9", alert_escalate_after_min=10**6)
    with session(world.engine) as sess:  # subscribed before addresses were checked so
        sess.add(
            NotificationSubscription(
                user_id=world.users["tech"],
                customer_id=world.customers["acme"],
                channel=channel,
                address=address,
            )
        )
    add_prediction(world.engine, world.machines["acme"][2], risk=0.92, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())

    report = routing.deliver_due(engine=world.engine, settings=world.settings)

    assert (report.claimed, report.retried) == (1, 1)
    with session(world.engine) as sess:
        [row] = sess.scalars(select(OutboxMessage))
        assert (row.status, row.last_error) == ("pending", error)
