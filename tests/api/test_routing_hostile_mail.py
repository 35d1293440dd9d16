"""Names and texts with line breaks, NUL and long non-ASCII runs in e-mails: no header can be injected and
the e-mail still goes out, through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from sqlalchemy import select

from api import policy, routing
from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import Customer, OutboxMessage, utcnow
from tests.api.routing_support import SmtpSink
from tests.api.support import add_prediction, build_world
from tests.sales import test_notifications

sink = test_notifications.sink  # the same fixture: a real SMTP server
INJECTED = "\r\nBcc: evil@attacker.example\r\n"
# \x0b and \u2028 break lines too (str.splitlines); PostgreSQL refuses NUL in names, so no NUL here.
NAME = f"Acme{INJECTED}\x0bÜnïcödé\u2028工業 " + "long " * 25  # within the 200 of customers.name


def _statuses(world) -> list[str]:
    with session(world.engine) as sess:
        return list(sess.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id)))


def _headers_of(raw: bytes) -> list[bytes]:
    """The header lines of a raw message, folded lines joined."""
    head = raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    return head.split(b"\r\n")


def _assert_not_injected(smtp: SmtpSink, recipients: list[str]) -> None:
    assert smtp.envelopes == [recipients]
    names = [line.split(b":", 1)[0].lower() for line in _headers_of(smtp.raw[0])]
    assert b"bcc" not in names and names.count(b"subject") == 1 and names.count(b"to") == 1


def test_an_offer_title_and_account_name_with_line_breaks_still_email_on_one_subject_line(
    world_url, sink: SmtpSink
) -> None:
    world = build_world(world_url, smtp_url=sink.url, mail_to="crm-inbox@oem.example", route_timeout_s=5.0)
    offer_id = world.offers["acme"][0]
    with session(world.engine) as sess:
        sess.get(Customer, world.customers["acme"]).name = NAME
    with world.client() as client:
        approve = {"title": f"Bearing kit{INJECTED}X-Extra: 1"}
        answer = client.post(
            f"{API_PREFIX}/offers/{offer_id}/approve", json=approve, headers=world.headers("am-acme")
        )
        assert answer.status_code == 200
    report = routing.deliver_due(engine=world.engine, settings=world.settings)

    assert (report.delivered, report.errors, _statuses(world)) == (1, [], ["delivered"])
    _assert_not_injected(sink, ["crm-inbox@oem.example"])
    subject = sink.messages[0]["Subject"]
    assert subject.startswith(
        "Service offer approved: Bearing kit Bcc: evil@attacker.example X-Extra: 1 for Acme"
    )
    assert "Ünïcödé" in subject and "工業" in subject and "\r" not in subject and "\n" not in subject
    assert b"x-extra" not in [line.split(b":", 1)[0].lower() for line in _headers_of(sink.raw[0])]


def test_an_alert_notification_for_a_customer_named_with_line_breaks_still_goes_out(
    world_url, sink: SmtpSink
) -> None:
    world = build_world(world_url, smtp_url=sink.url, route_timeout_s=5.0, alert_escalate_after_min=10**6)
    with session(world.engine) as sess:
        sess.get(Customer, world.customers["acme"]).name = NAME
    with world.client() as client:
        mail = {"customer_id": world.customers["acme"], "channel": "email", "address": "tech@oem.example"}
        subscribed = client.post(
            f"{API_PREFIX}/notifications/subscriptions", json=mail, headers=world.headers("tech")
        )
        assert subscribed.status_code == 201
    add_prediction(world.engine, world.machines["acme"][2], risk=0.92, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
    report = routing.deliver_due(engine=world.engine, settings=world.settings)

    assert (report.delivered, report.errors, _statuses(world)) == (1, [], ["delivered"])
    _assert_not_injected(sink, ["tech@oem.example"])
    subject = sink.messages[0]["Subject"]
    assert subject.startswith("New critical alert: acme-pump-2 of Acme Bcc: evil@attacker.example")
    assert "Ünïcödé" in subject and "工業" in subject  # the parser may drop spaces between encoded words
