"""A technician's notification tells the time to failure in the words the console shows for the alert
(`api/estimate.py`): an ok prediction's failure time with its band, a cold start's limit crossing as a
crossing, by e-mail and webhook alike (real aiosmtpd and HTTP receivers)."""

from __future__ import annotations

import re
from datetime import timedelta

from api import estimate
from api.app import create_app
from fleet.tables import utcnow
from tests.console.client import ConsoleClient, sign_in, visible
from tests.sales import test_notifications
from tests.sales.test_notifications import notified

sink = test_notifications.sink  # a real SMTP server (aiosmtpd)


def _ttf(html: str, pattern: str) -> str:
    """The visible text of the first time-to-failure span after `pattern`."""
    found = re.search(pattern + r'.*?<span class="ttf[^"]*"[^>]*>(.*?)</span>', html, re.S)
    return visible(found.group(1)).strip()


def test_an_ok_prediction_is_told_with_the_alert_page_s_time_to_failure(database_url, sink) -> None:
    # It said "failure expected in about 40 h": the alert's lead time, the trend's limit crossing (critical
    # as it is within 72 h), while the page says the failure is expected 120 h after the scoring.
    scored = utcnow().replace(second=0, microsecond=0) - timedelta(hours=1)
    expected = scored + timedelta(hours=120)  # the support's remaining life
    world, alert, texts = notified(database_url, sink, ts=scored, eta=scored + timedelta(hours=40))
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "tech")
        page = client.get(f"/alerts/{alert}").text
    shown = _ttf(page, 'id="alert-ttf"')
    assert shown.startswith(f"failure expected around {estimate.stamp(expected)} (80 % band "), shown
    for text in texts:
        assert f"critical, risk 92 %, {shown}. http" in text, text


def test_a_cold_start_alert_is_told_its_limit_crossing_not_a_failure(database_url, sink) -> None:
    # It said "failure expected in about 30 h" of the trend's limit crossing.
    scored = utcnow().replace(second=0, microsecond=0) - timedelta(hours=1)
    crossing = scored + timedelta(hours=30)
    world, alert, texts = notified(
        database_url,
        sink,
        ts=scored,
        status="cold_start",
        rul_hours=None,
        rul_low=None,
        rul_high=None,
        eta=crossing,
        eta_low=scored + timedelta(hours=20),
        eta_high=scored + timedelta(hours=50),
    )
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "tech")
        queue = client.get("/alerts").text
        page = visible(client.get(f"/alerts/{alert}").text)
    shown = _ttf(queue, f'data-alert="{alert}"')
    assert shown.startswith(f"limit crossing expected around {estimate.stamp(crossing)} (80 % band "), shown
    assert f"reaches its limit around {estimate.stamp(crossing)}" in page  # the alert page's trend line
    for text in texts:
        assert f"critical, risk 92 %, {shown}. http" in text, text
        assert "failure expected" not in text, text
