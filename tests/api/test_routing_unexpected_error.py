"""An error the senders do not expect (a bug, a library's own exception type, not a `DeliveryError`) whose
message quotes the destination's URL: the row keeps it masked as `internal …`, the log's traceback too,
and the row is retried like any failed attempt, then dead-lettered after `route_max_attempts`."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine, select, update

from api import delivery, routing
from fleet.db import session
from fleet.tables import OutboxMessage, WorkflowEvent
from tests.api.routing_support import SECRET, WebhookReceiver, approved_offers, settings_for

TOKEN = "tok-SECRET-9"


@pytest.fixture
def receiver():  # noqa: ANN201
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def _broken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CRM sender fails with an error of no kind it knows, quoting the URL it was given."""

    def post_webhook(_client: object, *, url: str, **_kwargs: object) -> None:
        raise RuntimeError(f"connection pool closed while sending to {url}")

    monkeypatch.setattr(delivery, "post_webhook", post_webhook)


def _row(engine: Engine) -> OutboxMessage:
    with session(engine) as sess:
        row = sess.scalars(select(OutboxMessage)).one()
        sess.expunge(row)
        return row


def _failures(engine: Engine) -> list[str]:
    with session(engine) as sess:
        trail = sess.scalars(select(WorkflowEvent).where(WorkflowEvent.action == "delivery_failed"))
        return [event.data["error"] for event in trail]


def _due_now(engine: Engine) -> None:
    with session(engine) as sess:
        sess.execute(update(OutboxMessage).values(next_attempt_at=OutboxMessage.created_at))


@pytest.mark.expect_logged_errors  # the unexpected error is logged with its traceback
def test_an_unexpected_error_is_stored_and_logged_masked_and_the_row_retried(
    engine: Engine,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"{receiver.url}?token={TOKEN}"
    shown = f"http://127.0.0.1:{receiver.port}/crm/***?token=***"
    settings = settings_for(webhook_url=url, webhook_secret=SECRET, route_max_attempts=3)
    approved_offers(engine, settings)
    _broken(monkeypatch)

    with caplog.at_level(logging.INFO, logger="api"):
        report = routing.deliver_due(engine=engine, settings=settings)

    said = f"internal RuntimeError: connection pool closed while sending to {shown}"
    row = _row(engine)
    assert (report.retried, report.dead, row.status, row.attempts) == (1, 0, "pending", 1)
    assert row.last_error == said and _failures(engine) == [said]
    assert report.errors == [f"{row.event_id} → webhook: {said}"]
    assert f"unexpected error sending {row.event_id} → webhook: Traceback" in caplog.text
    assert f"RuntimeError: connection pool closed while sending to {shown}" in caplog.text
    assert "SECRET" not in caplog.text
    assert receiver.requests == []

    monkeypatch.undo()  # the fault is gone: the retry delivers, once
    _due_now(engine)
    assert routing.deliver_due(engine=engine, settings=settings).delivered == 1
    assert list(receiver.accepted) == [row.event_id] and _row(engine).status == "delivered"


@pytest.mark.expect_logged_errors  # the unexpected errors and the dead letter
def test_an_unexpected_error_on_the_last_attempt_dead_letters_the_row_masked(
    engine: Engine,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(
        webhook_url=f"{receiver.url}?token={TOKEN}", webhook_secret=SECRET, route_max_attempts=2
    )
    approved_offers(engine, settings)
    _broken(monkeypatch)

    with caplog.at_level(logging.INFO, logger="api"):
        first = routing.deliver_due(engine=engine, settings=settings)
        _due_now(engine)
        second = routing.deliver_due(engine=engine, settings=settings)

    row = _row(engine)
    assert (first.retried, second.dead, row.status, row.attempts) == (1, 1, "dead", 2)
    assert "SECRET" not in row.last_error and "SECRET" not in caplog.text
    assert _failures(engine) == [row.last_error] * 2
    assert receiver.requests == []
