"""An alert whose prediction names no failure mode is told to technicians as "signs of a coming failure",
by e-mail and webhook alike, never as the placeholder the alert row keeps."""

from __future__ import annotations

from api import offers
from fleet.db import session
from fleet.tables import Alert
from tests.sales import test_notifications
from tests.sales.test_notifications import notified

sink = test_notifications.sink  # a real SMTP server (aiosmtpd)


def test_an_alert_without_a_failure_mode_is_told_as_signs_of_a_coming_failure(database_url, sink) -> None:
    world, alert, texts = notified(database_url, sink, mode=None, hours_ahead=20)
    with session(world.engine) as sess:
        stored = sess.get(Alert, alert).failure_mode
    assert stored == offers.UNNAMED_MODE  # the row keeps its placeholder; people read words
    said = "acme-pump-2 of acme — signs of a coming failure, critical, risk 92 %"
    for text in texts:
        assert said in text, text
        assert "unknown" not in text, text
