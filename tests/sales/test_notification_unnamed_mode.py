"""An alert whose prediction names no failure mode is told to technicians as "signs of a coming failure",
by e-mail and webhook alike, never as the placeholder the alert row keeps."""

from __future__ import annotations

from sqlalchemy import select

from api import offers, policy
from fleet.db import session
from fleet.tables import Alert, utcnow
from tests.api.support import add_prediction, build_world
from tests.sales import test_notifications
from tests.sales.test_notifications import SUBSCRIBE, IncomingWebhook, _route_all

sink = test_notifications.sink  # a real SMTP server (aiosmtpd)


def test_an_alert_without_a_failure_mode_is_told_as_signs_of_a_coming_failure(database_url, sink) -> None:
    hook = IncomingWebhook()
    try:
        # The local receiver allowed; the world's alerts of last week would escalate now: not this test.
        world = build_world(
            database_url,
            smtp_url=sink.url,
            webhook_allow_networks="127.0.0.1",
            alert_escalate_after_min=10**6,
        )
        tech = world.headers("tech")
        with world.client() as client:
            for channel, address in (("email", "tech@oem.example"), ("webhook", hook.url)):
                body = {"channel": channel, "address": address}
                assert client.post(SUBSCRIBE, json=body, headers=tech).status_code == 201
        machine = world.machines["acme"][2]
        add_prediction(world.engine, machine, risk=0.92, mode=None, hours_ahead=20)
        policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
        _route_all(world)
    finally:
        hook.stop()
    with session(world.engine) as sess:
        stored = sess.scalar(select(Alert.failure_mode).where(Alert.machine_id == machine))
    assert stored == offers.UNNAMED_MODE  # the row keeps its placeholder; people read words
    [message] = sink.messages
    [posted] = hook.bodies
    said = "acme-pump-2 of acme — signs of a coming failure, critical, risk 92 %"
    for text in (message.get_content(), posted["text"]):
        assert said in text, text
        assert "unknown" not in text, text
    assert message["Subject"] == "New critical alert: acme-pump-2 of acme"
