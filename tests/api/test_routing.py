"""The outbox router against a real webhook receiver, a real SMTP server, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
import signal
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from api import events, routing, routing_cli
from fleet import subprocesses
from fleet.db import session
from fleet.tables import DataUseGrant, Offer, OutboxMessage, WorkflowEvent, utcnow
from tests.api.routing_support import (
    PERSON_EMAIL,
    READING,
    SECRET,
    SmtpSink,
    WebhookReceiver,
    approved_offers,
    router_env,
    settings_for,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
ROUTER_SCRIPT = (
    "import typer\n"
    "from api import routing_cli\n"
    "app = typer.Typer()\n"
    "app.callback()(lambda: None)\n"
    "routing_cli.register(app)\n"
    "app()\n"
)


@pytest.fixture
def receiver(request: pytest.FixtureRequest):  # noqa: ANN201
    """A running receiver; parametrise indirectly with its keyword arguments."""
    recv = WebhookReceiver(**getattr(request, "param", {})).start()
    yield recv
    recv.stop()


def outbox(engine: Engine) -> list[OutboxMessage]:
    with session(engine) as sess:
        return list(sess.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def audit(engine: Engine, offer_id: int) -> list[WorkflowEvent]:
    with session(engine) as sess:
        query = select(WorkflowEvent).where(WorkflowEvent.subject_id == offer_id).order_by(WorkflowEvent.id)
        return list(sess.scalars(query))


def offer_status(engine: Engine, offer_id: int) -> str:
    with session(engine) as sess:
        return sess.get(Offer, offer_id).status


@pytest.mark.parametrize("receiver", [{"fail_first": 5}], indirect=True)
def test_webhook_retries_with_backoff_then_delivers_once(engine: Engine, receiver: WebhookReceiver) -> None:
    settings = settings_for(webhook_url=receiver.url, webhook_secret=SECRET, route_max_attempts=8)
    offer_ids = approved_offers(engine, settings, count=3)
    stop = threading.Event()
    thread = threading.Thread(
        target=routing.run_router,
        kwargs={"engine": engine, "settings": settings, "stop": stop, "poll_s": 0.02},
    )
    thread.start()
    try:
        wait_for(lambda: all(r.status == "delivered" for r in outbox(engine)), timeout=30, what="deliveries")
    finally:
        stop.set()
        thread.join(timeout=10)

    event_ids = {f"offer-{i}-approved" for i in offer_ids}
    assert set(receiver.accepted) == event_ids and not receiver.duplicates
    assert receiver.bad_signatures == 0
    assert receiver.attempts() == {event_id: 6 for event_id in event_ids}
    for row in outbox(engine):
        assert (row.attempts, row.last_error, row.destination) == (6, None, "webhook")
        assert row.delivered_at is not None
        assert receiver.accepted[row.event_id] == row.payload
    for offer_id in offer_ids:
        assert offer_status(engine, offer_id) == "sent"
        trail = audit(engine, offer_id)
        failed = [e for e in trail if e.action == "delivery_failed"]
        assert [e.data["attempt"] for e in failed] == [1, 2, 3, 4, 5]
        assert [e.action for e in trail][-1] == "sent"
        for k, event in enumerate(failed, start=1):
            # Full jitter: each delay lies in a window that doubles per attempt (0.05, 0.1, 0.2 … s).
            assert 0.0 <= event.data["delay_s"] <= settings.route_backoff_base_s * 2 ** (k - 1)
            assert event.data["error"].startswith("HTTP 500") and not event.data["dead"]
            next_attempt = trail[trail.index(event) + 1]
            assert next_attempt.at >= datetime.fromisoformat(event.data["retry_at"])
        # The receiver saw the attempts spaced at least by the recorded delays.
        times = [r.at for r in receiver.requests if r.webhook_id == f"offer-{offer_id}-approved"]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(gap >= e.data["delay_s"] - 0.01 for gap, e in zip(gaps, failed, strict=True))


def test_backoff_window_grows_exponentially_and_is_capped() -> None:
    rng = random.Random(7)
    means = [
        sum(routing.backoff_delay(k, base_s=1.0, max_s=20.0, rng=rng) for _ in range(4000)) / 4000
        for k in range(1, 8)
    ]
    for k, mean in enumerate(means, start=1):
        assert mean == pytest.approx(min(20.0, 2 ** (k - 1)) / 2, rel=0.1)
    assert means[0] < means[1] < means[2] < means[3] < means[4] < means[5]
    assert max(routing.backoff_delay(30, base_s=1.0, max_s=20.0, rng=rng) for _ in range(1000)) <= 20.0


@pytest.mark.slow
@pytest.mark.parametrize("receiver", [{"slow_first_s": 5.0}], indirect=True)
def test_router_killed_mid_delivery_redelivers_with_same_id(
    engine: Engine, database_url: str, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    settings = settings_for(webhook_url=receiver.url, webhook_secret=SECRET)
    offer_ids = approved_offers(engine, settings, count=3)
    # The router waits up to 3 s for the held first request (held 5 s), so it is still blocked on it when
    # killed even if this thread wakes late; with a shorter timeout it could move on and send the next one.
    env = router_env(
        database_url, webhook_url=receiver.url, webhook_secret=SECRET, route_timeout_s="3", log_level="INFO"
    )
    lease = timedelta(seconds=routing.lease_seconds(settings_for(route_timeout_s=3.0)))
    command = [sys.executable, "-c", ROUTER_SCRIPT, "route", "--poll", "0.05"]
    log = (tmp_path / "router.log").open("wb")
    first = subprocesses.popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        assert receiver.in_flight.wait(30), (tmp_path / "router.log").read_text()
    finally:
        first.kill()  # SIGKILL while the receiver holds the first request open
        first.wait(10)
    first_event = next(iter(receiver.accepted))
    with session(engine) as sess:
        row = sess.scalar(select(OutboxMessage).where(OutboxMessage.event_id == first_event))
        assert (row.status, row.attempts, row.delivered_at) == ("pending", 1, None)
        assert row.next_attempt_at > utcnow()  # leased: nobody resends it before the lease ends
        assert row.next_attempt_at <= utcnow() + lease  # … which ends within a lease of the claim
        # The lease runs out: the row is due again, as it is once the clock passes its end (20 s here).
        sess.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(next_attempt_at=utcnow()))

    second = subprocesses.popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        wait_for(lambda: all(r.status == "delivered" for r in outbox(engine)), timeout=40, what="redelivery")
    finally:
        second.send_signal(signal.SIGTERM)
        code = second.wait(15)
    assert code == 0, (tmp_path / "router.log").read_text()

    event_ids = {f"offer-{i}-approved" for i in offer_ids}
    assert set(receiver.accepted) == event_ids  # each event applied exactly once
    assert receiver.duplicates == [first_event]  # … though the interrupted one arrived twice
    assert receiver.attempts()[first_event] == 2 and receiver.bad_signatures == 0
    assert {r.event_id: r.attempts for r in outbox(engine)}[first_event] == 2
    assert all(offer_status(engine, i) == "sent" for i in offer_ids)


@pytest.mark.expect_logged_errors
@pytest.mark.parametrize("receiver", [{"fail_first": 10**6}], indirect=True)
def test_dead_letter_after_last_attempt(engine: Engine, receiver: WebhookReceiver) -> None:
    settings = settings_for(webhook_url=receiver.url, webhook_secret=SECRET, route_max_attempts=3)
    (offer_id,) = approved_offers(engine, settings)
    start = utcnow() + timedelta(seconds=1)
    reports = [
        routing.deliver_due(engine=engine, settings=settings, now=start + timedelta(hours=h))
        for h in range(4)
    ]
    assert [(r.retried, r.dead, r.claimed) for r in reports] == [(1, 0, 1), (1, 0, 1), (0, 1, 1), (0, 0, 0)]
    (row,) = outbox(engine)
    assert (row.status, row.attempts, row.delivered_at) == ("dead", 3, None)
    assert row.last_error.startswith("HTTP 500")
    assert len(receiver.requests) == 3 and not receiver.accepted
    failed = [e for e in audit(engine, offer_id) if e.action == "delivery_failed"]
    assert [(e.data["attempt"], e.data["dead"]) for e in failed] == [(1, False), (2, False), (3, True)]
    assert offer_status(engine, offer_id) == "approved"


def test_network_error_is_retried(sqlite_engine: Engine) -> None:
    closed = WebhookReceiver()  # never started: nothing listens on its port
    settings = settings_for(webhook_url=closed.url, webhook_secret=SECRET, route_max_attempts=5)
    closed.server.server_close()
    approved_offers(sqlite_engine, settings)
    report = routing.deliver_due(engine=sqlite_engine, settings=settings)
    assert (report.claimed, report.retried) == (1, 1)
    (row,) = outbox(sqlite_engine)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error.startswith("ConnectError")


def test_email_through_a_real_smtp_server(engine: Engine) -> None:
    sink = SmtpSink()
    sink.controller.start()
    try:
        settings = settings_for(smtp_url=sink.url, mail_to="crm-inbox@oem.example, sales@oem.example")
        offer_ids = approved_offers(engine, settings, count=2)
        first = routing.deliver_due(engine=engine, settings=settings)
        again = routing.deliver_due(engine=engine, settings=settings)
    finally:
        sink.controller.stop()
    assert (first.delivered, again.claimed) == (2, 0)
    assert len(sink.messages) == 2
    by_id = {m["Message-ID"]: m for m in sink.messages}
    assert set(by_id) == {f"<offer-{i}-approved@servicecast.example>" for i in offer_ids}
    for offer_id in offer_ids:
        message = by_id[f"<offer-{offer_id}-approved@servicecast.example>"]
        assert message["To"] == "crm-inbox@oem.example, sales@oem.example"
        text = message.get_body(("plain",)).get_content()
        assert f"Bearing inspection #{offer_id - offer_ids[0]}" in text and "480.00 EUR" in text
        assert f"https://servicecast.example/api/v1/offers/{offer_id}" in text
        (attachment,) = list(message.iter_attachments())
        assert str(READING).encode() not in attachment.get_content()
        event = json.loads(attachment.get_content())
        assert event["id"] == f"offer-{offer_id}-approved" and event["type"] == events.OFFER_APPROVED
        assert offer_status(engine, offer_id) == "sent"  # e-mail is the only destination
    for raw in sink.raw:
        assert str(READING).encode() not in raw and PERSON_EMAIL.encode() not in raw
        assert b"readings" not in raw


def test_revoked_consent_cancels_at_send_time(engine: Engine, receiver: WebhookReceiver) -> None:
    settings = settings_for(webhook_url=receiver.url, webhook_secret=SECRET)
    (revoked,) = approved_offers(engine, settings, tenant="acme")
    (kept,) = approved_offers(engine, settings, tenant="globex")
    with session(engine) as sess:
        customer_id = sess.get(Offer, revoked).customer_id
        sess.execute(
            update(DataUseGrant)
            .where(DataUseGrant.customer_id == customer_id, DataUseGrant.purpose == "offers")
            .values(revoked_at=utcnow())
        )
    report = routing.deliver_due(engine=engine, settings=settings)
    assert (report.claimed, report.delivered, report.cancelled) == (2, 1, 1)
    rows = {r.offer_id: r for r in outbox(engine)}
    assert (rows[revoked].status, rows[revoked].last_error, rows[revoked].attempts) == (
        "cancelled",
        "consent revoked",
        0,
    )
    assert rows[kept].status == "delivered"
    assert set(receiver.accepted) == {f"offer-{kept}-approved"}
    assert [e.action for e in audit(engine, revoked)][-1] == "delivery_cancelled"


def test_concurrent_routers_deliver_each_event_once(engine: Engine, receiver: WebhookReceiver) -> None:
    settings = settings_for(webhook_url=receiver.url, webhook_secret=SECRET)
    offer_ids = approved_offers(engine, settings, count=24)
    barrier = threading.Barrier(3)
    reports: list[routing.RouteReport] = []

    def one_router() -> None:
        barrier.wait()
        reports.append(routing.deliver_due(engine=engine, settings=settings))

    threads = [threading.Thread(target=one_router) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(r.delivered for r in reports) == 24
    assert sum(1 for r in reports if r.delivered) >= 2  # the routers really shared the work
    assert receiver.attempts() == {f"offer-{i}-approved": 1 for i in offer_ids}
    assert all(r.status == "delivered" and r.attempts == 1 for r in outbox(engine))


def test_event_is_a_cloudevent_without_telemetry_or_people(sqlite_engine: Engine) -> None:
    settings = settings_for(
        webhook_url="http://crm.example/hook",
        webhook_secret=SECRET,
        smtp_url="smtp://mx",
        mail_to="a@b.example",
    )
    (offer_id,) = approved_offers(sqlite_engine, settings)
    rows = outbox(sqlite_engine)
    assert sorted(r.destination for r in rows) == ["email", "webhook"]
    event = rows[0].payload
    assert event["specversion"] == "1.0" and event["datacontenttype"] == "application/json"
    assert event["source"] == "https://servicecast.example/api/v1"
    assert event["id"] == f"offer-{offer_id}-approved" and event["subject"] == f"offers/{offer_id}"
    data = event["data"]
    assert data["account"]["tenant"] == "acme" and data["machine"]["code"] == "acme-pump-1"
    assert data["evidence_url"] == f"https://servicecast.example/api/v1/offers/{offer_id}"
    assert (data["price"], data["failure_mode"]) == ({"amount": 480.0, "currency": "EUR"}, "bearing_wear")
    text = json.dumps(event)
    assert str(READING) not in text and PERSON_EMAIL not in text and "amy" not in text


def test_cli_refuses_to_start_without_a_destination() -> None:
    app = typer.Typer()
    app.callback()(lambda: None)
    routing_cli.register(app)
    result = CliRunner().invoke(app, ["route", "--once"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "SERVICECAST_WEBHOOK_URL" in result.stderr


def test_cli_once_delivers_what_is_due(
    engine: Engine, database_url: str, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(webhook_url=receiver.url, webhook_secret=SECRET)
    approved_offers(engine, settings, count=2)
    for name, value in router_env(database_url, webhook_url=receiver.url, webhook_secret=SECRET).items():
        if name.startswith("SERVICECAST_"):
            monkeypatch.setenv(name, value)
    app = typer.Typer()
    app.callback()(lambda: None)
    routing_cli.register(app)
    result = CliRunner().invoke(app, ["route", "--once"])
    assert result.exit_code == 0, result.output
    assert "delivered=2" in result.stdout and len(receiver.accepted) == 2
