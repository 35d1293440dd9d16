"""The CRM webhook answering 410 Gone (its endpoint removed): the router says so once, stops sending to it,
and holds the offers (never dead-lettered) until the operator names the CRM's current endpoint."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from api import routing
from fleet.db import session
from fleet.tables import Offer, OutboxMessage, utcnow
from tests.api.routing_support import SECRET, WebhookReceiver, approved_offers, settings_for


@pytest.fixture
def gone():
    receiver = WebhookReceiver(fail_first=10**6, fail_status=410).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def moved():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.mark.expect_logged_errors  # the one line saying the CRM endpoint is gone
def test_a_gone_crm_endpoint_holds_the_offers_until_the_new_url_delivers_them(
    engine: Engine, gone: WebhookReceiver, moved: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(
        webhook_url=gone.url, webhook_secret=SECRET, route_max_attempts=3, route_backoff_max_s=3600.0
    )
    offer_ids = approved_offers(engine, settings, count=3)
    holds = routing.Holds()

    with caplog.at_level(logging.INFO, logger="api.routing"):
        reports = [routing.deliver_due(engine=engine, settings=settings, holds=holds) for _ in range(4)]

    assert len(gone.requests) == 1  # one answer was enough: the endpoint is not hammered
    assert [r.held for r in reports] == [1, 0, 0, 0] and sum(r.dead + r.retried for r in reports) == 0
    with session(engine) as sess:
        rows = sess.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}  # held, no attempt used up
        assert all(sess.get(Offer, i).status == "approved" for i in offer_ids)
    said = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(said) == 1, [r.getMessage() for r in said]
    line = said[0].getMessage()
    assert line == (
        "the CRM webhook (SERVICECAST_WEBHOOK_URL) answered 410 Gone: its endpoint is removed. Offers are "
        "held, not sent and not dead-lettered, until SERVICECAST_WEBHOOK_URL names the CRM's current "
        "endpoint and the router is restarted (the old one is asked again every 3600 s)"
    )
    assert "/crm/events" not in line  # the URL may carry a token: the setting is named, not printed
    assert rows[0].last_error == (
        "held: the CRM webhook answered HTTP 410 Gone, its endpoint is removed; sent once "
        "SERVICECAST_WEBHOOK_URL names the CRM's current endpoint (restart the router)"
    )

    fixed = settings_for(webhook_url=moved.url, webhook_secret=SECRET, route_max_attempts=3)
    report = routing.deliver_due(engine=engine, settings=fixed, holds=routing.Holds())

    assert report.delivered == 3 and set(moved.accepted) == {f"offer-{i}-approved" for i in offer_ids}
    with session(engine) as sess:
        assert all(sess.get(Offer, i).status == "sent" for i in offer_ids)
        assert set(sess.scalars(select(OutboxMessage.status))) == {"delivered"}


@pytest.mark.expect_logged_errors  # the one line saying the CRM endpoint is gone
def test_a_crm_endpoint_brought_back_is_found_by_the_next_probe_and_gets_the_held_offers(
    engine: Engine,
) -> None:
    back = WebhookReceiver(fail_first=10**6, fail_status=410).start()
    try:
        settings = settings_for(webhook_url=back.url, webhook_secret=SECRET, route_backoff_max_s=600.0)
        offer_ids = approved_offers(engine, settings, count=2)
        holds, start = routing.Holds(), utcnow()
        first = routing.deliver_due(engine=engine, settings=settings, holds=holds, now=start)
        back.fail_first = 0  # the CRM brings the endpoint back under the same URL
        early = routing.deliver_due(
            engine=engine, settings=settings, holds=holds, now=start + timedelta(minutes=9)
        )
        probe = routing.deliver_due(
            engine=engine, settings=settings, holds=holds, now=start + timedelta(minutes=11)
        )
    finally:
        back.stop()

    assert (first.held, early.claimed, probe.delivered, len(back.requests)) == (1, 0, 2, 3)
    assert set(back.accepted) == {f"offer-{i}-approved" for i in offer_ids} and holds.until == {}
