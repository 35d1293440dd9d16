"""A receiver's name whose resolver never answers (getaddrinfo has no deadline of its own): the attempt
ends within the route timeout with the reason and the other rows are delivered; the router connects to
the addresses it resolved. The resolver is one the test controls, through the router's own `resolve`."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from api import policy, routing
from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import NotificationSubscription, OutboxMessage, utcnow
from tests.api.routing_support import SECRET, SmtpSink, WebhookReceiver, approved_offers, settings_for
from tests.api.support import add_prediction, build_world
from tests.sales.test_notifications import IncomingWebhook


class Resolver:
    """Names under `hang.test` get no answer until the test ends; every other name is 127.0.0.1."""

    def __init__(self) -> None:
        self.hanging, self.released, self.asked = True, threading.Event(), []

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if self.hanging and host.endswith("hang.test"):
            self.released.wait()
            raise OSError("the resolver gave up")
        return ["127.0.0.1"]


@pytest.fixture
def resolver():
    names = Resolver()
    yield names
    names.released.set()


@pytest.fixture
def crm():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def _pass(engine: Engine, settings, resolver: Resolver, **kwargs: object) -> routing.RouteReport:
    """One router pass in a thread; it must end, whatever the resolver does."""
    reports: list[routing.RouteReport] = []

    def run() -> None:
        reports.append(routing.deliver_due(engine=engine, settings=settings, resolve=resolver, **kwargs))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the router pass is stuck in the resolver"
    return reports[0]


def test_a_crm_name_whose_resolver_hangs_is_retried_and_delivered_once_it_answers(
    engine: Engine, crm: WebhookReceiver, resolver: Resolver
) -> None:
    url = f"http://crm.hang.test:{crm.port}/crm/events"  # a name only the test's resolver knows
    settings = settings_for(webhook_url=url, webhook_secret=SECRET, route_timeout_s=1.0)
    offer_ids = approved_offers(engine, settings, count=2)

    report = _pass(engine, settings, resolver)

    assert (report.claimed, report.retried) == (2, 2) and not crm.requests
    with session(engine) as sess:
        rows = sess.scalars(select(OutboxMessage)).all()
    assert {(r.status, r.last_error) for r in rows} == {
        ("pending", "cannot resolve crm.hang.test: no answer within 1 s")
    }

    resolver.hanging = False  # the resolver answers again: the rows go to the address it gives
    report = _pass(engine, settings, resolver, now=utcnow() + timedelta(hours=1))

    assert report.delivered == 2 and set(crm.accepted) == {f"offer-{i}-approved" for i in offer_ids}


def test_a_notification_webhook_whose_resolver_hangs_does_not_hold_the_others(
    database_url: str, resolver: Resolver
) -> None:
    hook = IncomingWebhook()
    try:
        world = build_world(
            database_url,
            route_timeout_s=1.0,
            alert_escalate_after_min=10**6,
            webhook_allow_networks="127.0.0.1",
        )
        port = hook.url.split(":")[2].split("/")[0]
        with world.client() as client:
            for host in ("hooks.hang.test", "hooks.test"):
                body = {
                    "customer_id": world.customers["acme"],
                    "channel": "webhook",
                    "address": f"http://{host}:{port}/hooks/abc",
                }
                answer = client.post(
                    f"{API_PREFIX}/notifications/subscriptions", json=body, headers=world.headers("tech")
                )
                assert answer.status_code == 201
        add_prediction(world.engine, world.machines["acme"][2], risk=0.92, mode="seal_leak", hours_ahead=20)
        policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())

        report = _pass(world.engine, world.settings, resolver)
    finally:
        hook.stop()

    assert (report.claimed, report.delivered, report.retried) == (2, 1, 1) and hook.posts == 1
    with session(world.engine) as sess:
        address = {
            f"notify-webhook:{s.id}": s.address for s in sess.scalars(select(NotificationSubscription))
        }
        rows = {address[r.destination]: r for r in sess.scalars(select(OutboxMessage))}
    hanging = rows[f"http://hooks.hang.test:{port}/hooks/abc"]
    assert (hanging.status, hanging.last_error) == (
        "pending",
        "cannot resolve hooks.hang.test: no answer within 1 s",
    )
    assert rows[f"http://hooks.test:{port}/hooks/abc"].status == "delivered"


def test_an_smtp_server_name_whose_resolver_hangs_is_retried_and_mailed_once_it_answers(
    engine: Engine, resolver: Resolver
) -> None:
    sink = SmtpSink()
    sink.controller.start()
    try:
        settings = settings_for(
            smtp_url=f"smtp://mx.hang.test:{sink.port}", mail_to="crm@oem.example", route_timeout_s=1.0
        )
        approved_offers(engine, settings)

        report = _pass(engine, settings, resolver)
        with session(engine) as sess:
            [row] = sess.scalars(select(OutboxMessage)).all()
        resolver.hanging = False
        again = _pass(engine, settings, resolver, now=utcnow() + timedelta(hours=1))
    finally:
        sink.controller.stop()

    assert report.retried == 1 and (row.status, row.last_error) == (
        "pending",
        "cannot resolve mx.hang.test: no answer within 1 s",
    )
    assert again.delivered == 1 and len(sink.messages) == 1


class TwoAddresses:
    """Every name is 127.0.0.2 first, where nothing listens, then 127.0.0.1, where the receiver does."""

    def __call__(self, host: str) -> list[str]:
        return ["127.0.0.2", "127.0.0.1"]


def test_a_name_whose_first_address_refuses_is_delivered_to_the_next(engine: Engine, crm: WebhookReceiver):
    sink = SmtpSink()
    sink.controller.start()
    try:
        settings = settings_for(
            webhook_url=f"http://crm.two.test:{crm.port}/crm/events",
            webhook_secret=SECRET,
            smtp_url=f"smtp://mx.two.test:{sink.port}",
            mail_to="crm@oem.example",
        )
        [offer_id] = approved_offers(engine, settings)
        report = routing.deliver_due(engine=engine, settings=settings, resolve=TwoAddresses())
    finally:
        sink.controller.stop()

    assert (report.delivered, report.retried) == (2, 0), report
    assert list(crm.accepted) == [f"offer-{offer_id}-approved"] and len(sink.messages) == 1
