"""A closed offer is told to the CRM by every destination it received the offer by: a real signed-webhook
receiver and a real SMTP server (aiosmtpd), SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from api import events, offer_lifecycle, offers, routing
from fleet.audit import operator
from fleet.db import session
from fleet.tables import Offer, OutboxMessage, utcnow
from tests.api.routing_support import (
    PERSON_EMAIL,
    SECRET,
    SmtpSink,
    WebhookReceiver,
    approved_offers,
    settings_for,
)

CRM_INBOX = "crm-inbox@oem.example"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    recv = WebhookReceiver().start()
    yield recv
    recv.stop()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    mail = SmtpSink()
    mail.controller.start()
    yield mail
    mail.controller.stop()


def _closings(engine: Engine) -> list[tuple[str, str, str]]:
    """The closing events' outbox rows: event id, destination, status."""
    with session(engine) as sess:
        rows = sess.execute(
            select(OutboxMessage.event_id, OutboxMessage.destination, OutboxMessage.status)
            .where(OutboxMessage.event_type.in_(events.OFFER_CLOSED.values()))
            .order_by(OutboxMessage.event_id, OutboxMessage.destination)
        )
        return [tuple(row) for row in rows]


def _withdraw(engine: Engine, offer_id: int, settings, why: str = "risk fell to 20 %") -> None:  # noqa: ANN001
    with session(engine) as sess:
        offer = sess.get_one(Offer, offer_id)
        offer_lifecycle.withdraw(sess, offer, why=why, now=utcnow(), settings=settings)


def test_a_crm_that_takes_offers_by_e_mail_learns_once_by_e_mail_that_one_was_withdrawn(
    engine: Engine, sink: SmtpSink
) -> None:
    settings = settings_for(smtp_url=sink.url, mail_to=CRM_INBOX)
    (offer_id,) = approved_offers(engine, settings)
    assert routing.deliver_due(engine=engine, settings=settings).delivered == 1  # the approval's e-mail

    _withdraw(engine, offer_id, settings)
    _withdraw(engine, offer_id, settings)  # the same closing again: one event per destination still

    assert routing.deliver_due(engine=engine, settings=settings).delivered == 1
    assert routing.deliver_due(engine=engine, settings=settings).claimed == 0
    withdrawn = f"offer-{offer_id}-withdrawn"
    assert _closings(engine) == [(withdrawn, "email", "delivered")]
    assert len(sink.messages) == 2 and sink.envelopes[1] == [CRM_INBOX]
    mail = sink.messages[1]
    assert mail["X-Servicecast-Event-Id"] == withdrawn
    assert mail["Subject"] == "Service offer withdrawn: Bearing inspection #0 for acme-pump-1 (pump)"
    text = mail.get_body(("plain",)).get_content()
    assert "is withdrawn: risk fell to 20 %." in text and "acme-pump-1 (pump, serial SN-7)" in text
    (attachment,) = list(mail.iter_attachments())
    event = json.loads(attachment.get_content())
    assert (
        event["type"] == "com.servicecast.offer.withdrawn" and event["data"]["reason"] == "risk fell to 20 %"
    )


def test_a_crm_that_takes_offers_by_webhook_and_e_mail_learns_of_the_expiry_by_both(
    engine: Engine, receiver: WebhookReceiver, sink: SmtpSink
) -> None:
    settings = settings_for(
        webhook_url=receiver.url, webhook_secret=SECRET, smtp_url=sink.url, mail_to=CRM_INBOX
    )
    (offer_id,) = approved_offers(engine, settings)
    assert routing.deliver_due(engine=engine, settings=settings).delivered == 2
    now = utcnow()
    with session(engine) as sess:
        sess.get_one(Offer, offer_id).expires_at = now - timedelta(minutes=1)
    with session(engine) as sess:
        assert offer_lifecycle.sweep(sess, now=now, settings=settings) == (0, 1)

    assert routing.deliver_due(engine=engine, settings=settings).delivered == 2

    expired = f"offer-{offer_id}-expired"
    assert _closings(engine) == [(expired, "email", "delivered"), (expired, "webhook", "delivered")]
    assert set(receiver.accepted) == {f"offer-{offer_id}-approved", expired} and not receiver.duplicates
    assert [m["X-Servicecast-Event-Id"] for m in sink.messages] == [f"offer-{offer_id}-approved", expired]
    assert sink.messages[1]["Subject"].startswith(
        "Service offer expired: Bearing inspection #0 for acme-pump-1"
    )
    assert "is expired: no answer in time." in sink.messages[1].get_body(("plain",)).get_content()


def test_an_offer_whose_approval_never_reached_the_crm_is_closed_without_a_word_to_it(
    engine: Engine, receiver: WebhookReceiver, sink: SmtpSink
) -> None:
    settings = settings_for(
        webhook_url=receiver.url, webhook_secret=SECRET, smtp_url=sink.url, mail_to=CRM_INBOX
    )
    (offer_id,) = approved_offers(engine, settings)  # its approval waits in the outbox (the router was down)

    _withdraw(engine, offer_id, settings)

    report = routing.deliver_due(engine=engine, settings=settings)
    assert (report.delivered, report.cancelled) == (0, 2)
    assert _closings(engine) == [] and receiver.requests == [] and sink.messages == []


def test_after_a_consent_revocation_the_e_mail_of_the_withdrawal_carries_ids_only(
    engine: Engine, sink: SmtpSink
) -> None:
    settings = settings_for(smtp_url=sink.url, mail_to=CRM_INBOX)
    (offer_id,) = approved_offers(engine, settings)
    assert routing.deliver_due(engine=engine, settings=settings).delivered == 1
    with session(engine) as sess:
        customer_id = sess.get_one(Offer, offer_id).customer_id
        assert offers.revoke_consent(sess, customer_id, "offers", operator(), settings=settings) == 1

    assert routing.deliver_due(engine=engine, settings=settings).delivered == 1

    mail = sink.messages[1]
    assert mail["Subject"] == f"Service offer {offer_id} withdrawn"
    text = mail.get_body(("plain",)).get_content()
    assert f"Service offer {offer_id} of customer id {customer_id} is withdrawn" in text
    (attachment,) = list(mail.iter_attachments())
    data = json.loads(attachment.get_content())["data"]
    assert data == {
        "schema_version": 1,
        "offer_id": offer_id,
        "customer_id": customer_id,
        "status": "withdrawn",
    }
    personal = (
        "Acme Industries",
        "acme-pump-1",
        "SN-7",
        "Bearing inspection",
        "consent",
        "amy-acme",
        PERSON_EMAIL,
    )
    said = f"{mail['Subject']} {text} {attachment.get_content()}"
    assert [word for word in personal if word in said] == []
