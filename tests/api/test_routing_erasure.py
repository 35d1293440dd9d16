"""The CRM is told of an erasure (GDPR Art. 19): a real signed-webhook receiver, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import pytest
from sqlalchemy import Engine, func, select

from api import erasure_events, routing
from fleet import erasure, erasure_notices, retention
from fleet.db import session
from fleet.tables import Customer, ErasureNotice, ErasureReceipt, OutboxMessage, WorkflowEvent, utcnow
from tests.api.routing_support import (
    PERSON_EMAIL,
    SECRET,
    SmtpSink,
    WebhookReceiver,
    approved_offers,
    serve_http,
    settings_for,
    stop_http,
)
from tests.services import free_port


@pytest.fixture
def receiver():  # noqa: ANN201
    recv = WebhookReceiver().start()
    yield recv
    recv.stop()


@pytest.fixture
def sink():  # noqa: ANN201
    mail = SmtpSink()
    mail.controller.start()
    yield mail
    mail.controller.stop()


def _never_sent(engine: Engine) -> None:
    """Put the queued offer events off for days: only the erasure's event is attempted."""
    with session(engine) as sess:
        sess.execute(OutboxMessage.__table__.update().values(next_attempt_at=utcnow() + timedelta(days=9)))


def _erase(engine: Engine, tmp_path, tenant: str = "acme") -> dict:  # noqa: ANN001
    archive = str(tmp_path / "archive")
    return erasure.erase(
        engine, tenant=tenant, confirm=tenant, by="cli:dpo", archive_url=archive, now=utcnow()
    )


def _customer_id(engine: Engine, tenant: str) -> int:
    with session(engine) as sess:
        return sess.scalar(select(Customer.id).where(Customer.tenant == tenant))


def _rows(engine: Engine, table) -> list:  # noqa: ANN001
    with session(engine) as sess:
        return list(sess.scalars(select(table)))


def _receipt_id(engine: Engine, pseudonym: str) -> int:
    with session(engine) as sess:
        return sess.scalar(select(ErasureReceipt.id).where(ErasureReceipt.pseudonym == pseudonym))


def _audit(engine: Engine, action: str) -> list[tuple]:
    """The audit lines of `action`: subject, subject id, actor and data."""
    w = WorkflowEvent
    with session(engine) as sess:
        lines = sess.execute(select(w.subject, w.subject_id, w.actor, w.data).where(w.action == action))
        return [tuple(line) for line in lines]


def test_an_erased_customer_the_crm_knows_is_announced_once_by_ids_and_its_queued_offers_never_go(
    engine: Engine, receiver: WebhookReceiver, tmp_path
) -> None:
    settings = settings_for(webhook_url=receiver.url, webhook_secret=SECRET)
    sent, queued = approved_offers(engine, settings, count=2)
    with session(engine) as sess:  # one offer reached the CRM, the other waits in the outbox
        sess.get(OutboxMessage, _outbox_id(engine, f"offer-{queued}-approved")).next_attempt_at += timedelta(
            days=1
        )
    assert routing.deliver_due(engine=engine, settings=settings).delivered == 1
    acme = _customer_id(engine, "acme")

    receipt = _erase(engine, tmp_path)

    later = utcnow() + timedelta(days=2)  # the queued offer's row would be due by now
    report = routing.deliver_due(engine=engine, settings=settings, now=later)
    assert (
        report.delivered == 1
        and routing.deliver_due(engine=engine, settings=settings, now=later).claimed == 0
    )
    announced = f"erasure-{_receipt_id(engine, receipt['pseudonym'])}"
    assert set(receiver.accepted) == {f"offer-{sent}-approved", announced}  # the queued offer never went
    assert receiver.bad_signatures == 0 and not receiver.duplicates
    event = receiver.accepted[announced]
    assert event["type"] == "com.servicecast.customer.erased" and event["subject"] == f"customers/{acme}"
    assert event["data"] == {
        "schema_version": 1,
        "account": {"customer_id": acme, "tenant": "acme"},
        "erased_at": event["time"],
    }
    assert "Acme Industries" not in json.dumps(event) and "acme-pump" not in json.dumps(event)
    # Delivered, the row forgets the account's ids; nothing waits to be announced again.
    (row,) = _rows(engine, OutboxMessage)
    assert row.status == "delivered" and row.customer_id is None
    assert row.payload == {"id": announced, "type": event["type"], "time": event["time"]}
    assert _rows(engine, ErasureNotice) == []
    # The audit trail records that the CRM was told, by the erasure's pseudonym, never by the account's ids.
    told = {"pseudonym": receipt["pseudonym"], "destination": "webhook", "event_id": announced}
    assert _audit(engine, "erasure_announced") == [("customer", None, "system", told)]


def test_a_customer_whose_offers_never_went_to_the_crm_is_not_announced(
    engine: Engine, receiver: WebhookReceiver, tmp_path
) -> None:
    settings = settings_for(webhook_url=receiver.url, webhook_secret=SECRET)
    approved_offers(engine, settings, enqueue=False)

    _erase(engine, tmp_path)

    assert routing.deliver_due(engine=engine, settings=settings).claimed == 0
    assert (
        receiver.requests == [] and _rows(engine, ErasureNotice) == [] and _rows(engine, OutboxMessage) == []
    )


def test_the_announcement_waits_out_a_crm_that_is_down_and_goes_once(engine: Engine, tmp_path) -> None:
    port = free_port()  # nothing listens here yet: the CRM is down
    url = f"http://127.0.0.1:{port}/crm/events"
    settings = settings_for(webhook_url=url, webhook_secret=SECRET)
    approved_offers(engine, settings)
    _never_sent(engine)
    _erase(engine, tmp_path)

    down = routing.deliver_due(engine=engine, settings=settings)
    assert (down.claimed, down.retried) == (1, 1)
    receiver = WebhookReceiver(port=port).start()
    try:
        later = utcnow() + timedelta(minutes=5)
        assert routing.deliver_due(engine=engine, settings=settings, now=later).delivered == 1
        assert routing.deliver_due(engine=engine, settings=settings, now=later).claimed == 0
    finally:
        receiver.stop()
    assert len(receiver.accepted) == 1 and receiver.attempts() == {next(iter(receiver.accepted)): 1}
    (row,) = _rows(engine, OutboxMessage)
    assert (row.status, row.attempts) == ("delivered", 2)


def test_an_erasure_is_announced_once_whatever_reruns_and_passes_follow(
    engine: Engine, receiver: WebhookReceiver, tmp_path
) -> None:
    settings = settings_for(webhook_url=receiver.url, webhook_secret=SECRET)
    approved_offers(engine, settings)
    no_webhook = settings_for()
    _erase(engine, tmp_path)
    # The erasure committed; no router has run (or one without the CRM webhook): the notice waits.
    assert routing.deliver_due(engine=engine, settings=no_webhook).claimed == 0
    assert len(_rows(engine, ErasureNotice)) == 1

    with pytest.raises(LookupError):  # the customer is gone: a rerun erases and announces nothing more
        _erase(engine, tmp_path)
    assert erasure_events.enqueue_notices(engine=engine, settings=settings) == 1
    assert erasure_events.enqueue_notices(engine=engine, settings=settings) == 0
    routing.deliver_due(engine=engine, settings=settings)
    routing.deliver_due(engine=engine, settings=settings)

    assert len(receiver.requests) == 1 and len(receiver.accepted) == 1
    with session(engine) as sess:
        assert sess.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def _outbox_id(engine: Engine, event_id: str) -> int:
    with session(engine) as sess:
        return sess.scalar(select(OutboxMessage.id).where(OutboxMessage.event_id == event_id))


def test_a_crm_that_takes_offers_by_e_mail_only_is_told_by_e_mail_with_ids_only(
    engine: Engine, tmp_path
) -> None:
    sink = SmtpSink()
    sink.controller.start()
    try:
        settings = settings_for(smtp_url=sink.url, mail_to="crm-inbox@oem.example")
        approved_offers(engine, settings)
        assert routing.deliver_due(engine=engine, settings=settings).delivered == 1  # the offer's e-mail
        acme = _customer_id(engine, "acme")

        receipt = _erase(engine, tmp_path)

        assert routing.deliver_due(engine=engine, settings=settings).delivered == 1
        assert routing.deliver_due(engine=engine, settings=settings).claimed == 0
    finally:
        sink.controller.stop()
    announced = f"erasure-{_receipt_id(engine, receipt['pseudonym'])}"
    assert len(sink.messages) == 2 and sink.envelopes[1] == ["crm-inbox@oem.example"]
    mail = sink.messages[1]
    assert mail["X-Servicecast-Event-Id"] == announced and str(acme) in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    assert f"customer id {acme}" in text and "acme" in text
    (attachment,) = list(mail.iter_attachments())
    event = json.loads(attachment.get_content())
    assert event["type"] == "com.servicecast.customer.erased" and event["id"] == announced
    assert event["data"]["account"] == {"customer_id": acme, "tenant": "acme"}
    raw = sink.raw[1].decode()
    assert [n for n in ("Acme Industries", "acme-pump-1", "SN-7", "amy-acme", PERSON_EMAIL) if n in raw] == []
    rows = [(r.event_id, r.destination, r.status, r.customer_id) for r in _rows(engine, OutboxMessage)]
    assert rows == [(announced, "email", "delivered", None)]
    told = {"pseudonym": receipt["pseudonym"], "destination": "email", "event_id": announced}
    assert _audit(engine, "erasure_announced") == [("customer", None, "system", told)]


@pytest.mark.expect_logged_errors  # the router's dead letter
def test_a_dead_lettered_announcement_keeps_the_ids_30_days_then_retention_drops_them(
    engine: Engine, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"http://127.0.0.1:{free_port()}/crm/events"  # nothing listens: the CRM is down
    settings = settings_for(
        webhook_url=down, webhook_secret=SECRET, route_max_attempts=1, archive_url=str(tmp_path / "archive")
    )
    approved_offers(engine, settings)
    _never_sent(engine)
    acme = {"customer_id": _customer_id(engine, "acme"), "tenant": "acme"}
    receipt = _erase(engine, tmp_path)
    assert routing.deliver_due(engine=engine, settings=settings).dead == 1
    (dead,) = _rows(engine, OutboxMessage)
    last_attempt = dead.next_attempt_at

    retention.run(engine, settings=settings, now=last_attempt + timedelta(days=29))
    (row,) = _rows(engine, OutboxMessage)
    assert row.payload["data"]["account"] == acme  # an operator can still set it pending and send it

    with caplog.at_level(logging.WARNING, logger="fleet"):
        plan = retention.run(engine, settings=settings, now=last_attempt + timedelta(days=31))
    (row,) = _rows(engine, OutboxMessage)
    assert row.status == "dead" and row.customer_id is None
    assert row.payload == {key: dead.payload[key] for key in ("id", "type", "time")}
    assert "cannot be retried" in row.last_error
    assert [s.count for s in plan.steps if s.data_class == "dead_erasure_events"] == [1]
    assert [r for r in caplog.records if "customer.erased" in r.getMessage() and r.levelno == logging.WARNING]
    dropped = {
        "pseudonym": receipt["pseudonym"],
        "destination": "webhook",
        "event_id": dead.event_id,
        "why": erasure_notices.DEAD_WHY,
    }
    assert _audit(engine, "erasure_announcement_dropped") == [("customer", None, "system", dropped)]


def test_a_crm_destination_that_never_had_the_customer_is_not_told_of_its_erasure(
    engine: Engine, receiver: WebhookReceiver, sink: SmtpSink, tmp_path
) -> None:
    by_webhook = settings_for(webhook_url=receiver.url, webhook_secret=SECRET)
    approved_offers(engine, by_webhook)
    assert routing.deliver_due(engine=engine, settings=by_webhook).delivered == 1
    receipt = _erase(engine, tmp_path)
    # The CRM's e-mail is configured after the erasure: it never had the customer's offers.
    both = settings_for(
        webhook_url=receiver.url, webhook_secret=SECRET, smtp_url=sink.url, mail_to="crm@x.example"
    )

    assert routing.deliver_due(engine=engine, settings=both).delivered == 1
    assert routing.deliver_due(engine=engine, settings=both).claimed == 0
    announced = f"erasure-{_receipt_id(engine, receipt['pseudonym'])}"
    assert sink.messages == [] and announced in receiver.accepted
    rows = [(r.event_id, r.destination, r.status) for r in _rows(engine, OutboxMessage)]
    assert rows == [(announced, "webhook", "delivered")] and _rows(engine, ErasureNotice) == []


def test_an_announcement_no_router_can_send_goes_30_days_after_the_erasure_with_an_audit_line(
    engine: Engine, receiver: WebhookReceiver, sink: SmtpSink, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    by_mail = settings_for(smtp_url=sink.url, mail_to="crm@x.example")
    approved_offers(engine, by_mail)
    assert routing.deliver_due(engine=engine, settings=by_mail).delivered == 1
    acme, erased_at = _customer_id(engine, "acme"), utcnow()
    receipt = _erase(engine, tmp_path)
    # From now on the routers have the webhook only (the e-mail to the CRM was given up): none can tell it.
    by_webhook = settings_for(
        webhook_url=receiver.url, webhook_secret=SECRET, archive_url=str(tmp_path / "archive")
    )
    with caplog.at_level(logging.WARNING, logger="api"):
        routing.run_router(engine=engine, settings=by_webhook, stop=_stopped())  # its start only
    assert routing.deliver_due(engine=engine, settings=by_webhook).claimed == 0
    assert receiver.requests == [] and [n.destination for n in _rows(engine, ErasureNotice)] == ["email"]
    (warned,) = [r.getMessage() for r in caplog.records if "erasure announcement" in r.getMessage()]
    assert warned.startswith("1 erasure announcement(s) wait for the CRM's email, which this router does not")
    caplog.clear()

    retention.run(engine, settings=by_webhook, now=erased_at + timedelta(days=29))
    assert [n.customer_id for n in _rows(engine, ErasureNotice)] == [acme]  # the e-mail may yet be configured

    with caplog.at_level(logging.WARNING, logger="fleet"):
        plan = retention.run(engine, settings=by_webhook, now=erased_at + timedelta(days=31))
    assert _rows(engine, ErasureNotice) == [] and _rows(engine, OutboxMessage) == []
    assert [s.count for s in plan.steps if s.data_class == "dead_erasure_events"] == [1]
    assert [r for r in caplog.records if "customer.erased" in r.getMessage() and r.levelno == logging.WARNING]
    dropped = {
        "pseudonym": receipt["pseudonym"],
        "destination": "email",
        "event_id": f"erasure-{_receipt_id(engine, receipt['pseudonym'])}",
        "why": "no router with this destination within 30 days of the erasure",
    }
    assert _audit(engine, "erasure_announcement_dropped") == [("customer", None, "system", dropped)]


def _stopped() -> threading.Event:
    stop = threading.Event()
    stop.set()
    return stop


class _Echo(BaseHTTPRequestHandler):
    """A CRM that refuses the event and quotes the account it could not find."""

    status = 422

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        event = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        body = json.dumps({"error": "unknown account", "account": event["data"]["account"]}).encode()
        self.send_response(self.status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.mark.expect_logged_errors  # the router's dead letter
@pytest.mark.parametrize("status", [422, 500])
def test_a_dead_lettered_announcement_drops_the_crm_s_error_text_quoting_the_ids_with_them(
    engine: Engine, tmp_path, status: int
) -> None:
    server = serve_http(type("Echo", (_Echo,), {"status": status}))
    try:
        url = f"http://127.0.0.1:{server.server_port}/crm/events"
        settings = settings_for(
            webhook_url=url,
            webhook_secret=SECRET,
            route_max_attempts=1,
            archive_url=str(tmp_path / "archive"),
        )
        approved_offers(engine, settings)
        _never_sent(engine)
        _erase(engine, tmp_path)
        assert routing.deliver_due(engine=engine, settings=settings).dead == 1
    finally:
        stop_http(server)
    (dead,) = _rows(engine, OutboxMessage)
    assert dead.last_error.startswith(f"HTTP {status}: ") and '"tenant": "acme"' in dead.last_error

    retention.run(engine, settings=settings, now=dead.next_attempt_at + timedelta(days=31))

    (row,) = _rows(engine, OutboxMessage)
    assert "cannot be retried" in row.last_error
    assert [
        word for word in ("acme", "customer_id", '"account"', f"HTTP {status}") if word in row.last_error
    ] == []
