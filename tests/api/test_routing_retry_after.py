"""A receiver that asks to be called later (429 Too Many Requests or 503 with Retry-After) is not called again
before then, up to the router's longest wait; a Retry-After it cannot read leaves the backoff as it is."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import Engine, select

from api import routing
from fleet.db import session
from fleet.tables import OutboxMessage, utcnow
from tests.api.routing_support import SECRET, WebhookReceiver, approved_offers, settings_for

LONGEST = 600.0  # route_backoff_max_s
BASE = 0.05  # route_backoff_base_s: the first retry's window without a Retry-After


def _retry_in(engine: Engine, *, status: int, retry_after: str) -> tuple[timedelta, str]:
    """How long after the failed attempt the router retries a row whose receiver answered so; its error."""
    receiver = WebhookReceiver(fail_first=99, fail_status=status, retry_after=retry_after).start()
    settings = settings_for(
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        route_backoff_base_s=BASE,
        route_backoff_max_s=LONGEST,
    )
    approved_offers(engine, settings)
    now = utcnow()
    try:
        report = routing.deliver_due(engine=engine, settings=settings, now=now)
    finally:
        receiver.stop()
    assert (report.claimed, report.retried) == (1, 1)
    with session(engine) as sess:
        [row] = sess.scalars(select(OutboxMessage))
        return row.next_attempt_at - now, row.last_error


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_in_seconds_is_waited(engine: Engine, status: int) -> None:
    wait, error = _retry_in(engine, status=status, retry_after="120")
    assert timedelta(seconds=120) <= wait <= timedelta(seconds=120 + BASE), wait
    assert error == f"HTTP {status}: "


def test_a_retry_after_as_a_date_is_waited(engine: Engine) -> None:
    later = utcnow() + timedelta(hours=1)
    wait, _ = _retry_in(engine, status=503, retry_after=format_datetime(later, usegmt=True))
    assert timedelta(seconds=LONGEST) == wait  # an hour asked, the router's longest wait given


@pytest.mark.parametrize("retry_after", ["soon", "-5", "1e9", "Mon, 99 Foo 2026 99:99:99 GMT", ""])
def test_a_retry_after_that_says_nothing_usable_leaves_the_backoff(engine: Engine, retry_after: str) -> None:
    wait, _ = _retry_in(engine, status=429, retry_after=retry_after)
    assert wait <= timedelta(seconds=BASE), wait


@pytest.mark.parametrize("retry_after", ["31536000", "9" * 5000], ids=["a-year", "5000-digits"])
def test_a_retry_after_beyond_the_longest_wait_is_cut_to_it(engine: Engine, retry_after: str) -> None:
    wait, _ = _retry_in(engine, status=429, retry_after=retry_after)
    assert wait == timedelta(seconds=LONGEST)
