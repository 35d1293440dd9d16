"""Technician notifications: once per alert event to each subscriber, by real SMTP and a local webhook,
retried on failure, none for people who did not subscribe or unsubscribed."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from sqlalchemy import select, update

from api import auth, policy, routing
from api.app import API_PREFIX, create_app
from fleet import machine_types
from fleet.db import session
from fleet.tables import Alert, OutboxMessage, Prediction, utcnow
from simulators.machine_types import TYPES_FILE
from tests.api.routing_support import SmtpSink, serve_http, stop_http
from tests.api.support import World, add_prediction, build_world, served

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"


class IncomingWebhook:
    """A Teams/Slack-style incoming webhook on a free port: keeps each JSON body, answers the first N posts
    with `fail_status`."""

    def __init__(self, fail_first: int = 0, fail_status: int = 500) -> None:
        self.fail_first, self.fail_status, self.posts, self.bodies = fail_first, fail_status, 0, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.posts += 1
                status = receiver.fail_status if receiver.posts <= receiver.fail_first else 200
                if status == 200:
                    receiver.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = serve_http(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/abc"

    def stop(self) -> None:
        stop_http(self.server)


@pytest.fixture
def sink():
    smtp = SmtpSink()
    smtp.controller.start()
    yield smtp
    smtp.controller.stop()


@pytest.fixture
def hook():
    receiver = IncomingWebhook(fail_first=2)
    yield receiver
    receiver.stop()


def _route_all(world) -> None:
    for _ in range(50):
        routing.deliver_due(engine=world.engine, settings=world.settings)
        with session(world.engine) as sess:
            if not sess.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")).all():
                return
        threading.Event().wait(0.1)
    raise AssertionError("notifications still pending")


def notified(
    database_url: str,
    sink: SmtpSink,
    *,
    mode: str | None = "trend:vibration_rms_mm_s",
    hours_ahead: float = 120.0,
    **values,
) -> tuple[World, int, list[str]]:
    """A prediction at 92 % (`values` over the support's row; a critical alert) on acme's third pump through
    the policy and the router to an e-mail and a webhook subscriber: the world, the alert and the two texts
    (one line, the subject as ever)."""
    hook = IncomingWebhook()
    try:
        # The local receiver allowed; the world's alerts of last week would escalate now: not these tests.
        world = build_world(
            database_url,
            smtp_url=sink.url,
            webhook_allow_networks="127.0.0.1",
            alert_escalate_after_min=10**6,
        )
        with world.client() as client:
            for channel, address in (("email", "tech@oem.example"), ("webhook", hook.url)):
                body = {"channel": channel, "address": address}
                assert client.post(SUBSCRIBE, json=body, headers=world.headers("tech")).status_code == 201
        machine = world.machines["acme"][2]
        prediction = add_prediction(world.engine, machine, risk=0.92, mode=mode, hours_ahead=hours_ahead)
        if values:
            with session(world.engine) as sess:
                sess.execute(update(Prediction).where(Prediction.id == prediction).values(values))
        policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
        _route_all(world)
    finally:
        hook.stop()
    with session(world.engine) as sess:
        alert = sess.scalar(select(Alert.id).where(Alert.machine_id == machine))
    [message] = sink.messages
    [posted] = hook.bodies
    assert message["Subject"] == "New critical alert: acme-pump-2 of acme"
    assert "\n" not in posted["text"]
    return world, alert, [message.get_content(), posted["text"]]


def test_each_alert_event_notifies_each_subscriber_once_and_nobody_else(database_url, sink, hook) -> None:
    world = build_world(
        database_url,
        smtp_url=sink.url,
        webhook_allow_networks="127.0.0.1",  # the local receiver
        route_backoff_base_s=0.05,
        route_backoff_max_s=0.2,
        route_timeout_s=2.0,
        alert_escalate_after_min=10**6,  # the world's alerts of last week would escalate now: not this test
    )
    acme, globex = world.customers["acme"], world.customers["globex"]
    tech, am_globex = world.headers("tech"), world.headers("am-globex")
    with world.client() as client:
        subscribe = f"{API_PREFIX}/notifications/subscriptions"
        mail = {"customer_id": acme, "channel": "email", "address": "tech@oem.example"}
        assert client.post(subscribe, json=mail, headers=tech).status_code == 201
        webhook = {"customer_id": acme, "channel": "webhook", "address": hook.url, "min_severity": "high"}
        assert client.post(subscribe, json=webhook, headers=tech).status_code == 201
        other = {"customer_id": globex, "channel": "email", "address": "am@oem.example"}
        assert client.post(subscribe, json=other, headers=am_globex).status_code == 201
        foreign = {"customer_id": acme, "channel": "email", "address": "am@oem.example"}
        assert client.post(subscribe, json=foreign, headers=am_globex).status_code == 404
        gone = client.post(subscribe, json={**mail, "address": "gone@oem.example"}, headers=tech).json()

        add_prediction(world.engine, world.machines["acme"][2], risk=0.92, mode="seal_leak", hours_ahead=20)
        policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
        policy.run_once(
            engine=world.engine, settings=world.settings, now=utcnow()
        )  # a repeated pass adds nothing
        assert client.delete(f"{subscribe}/{gone['id']}", headers=tech).status_code == 204
        _route_all(world)

        assert [m["To"] for m in sink.messages] == ["tech@oem.example"]
        message_id = sink.messages[0]["Message-ID"]  # what mail systems dedupe retries by
        assert message_id.defects == () and str(message_id).startswith("<alert-"), message_id
        assert sink.messages[0]["Subject"] == "New critical alert: acme-pump-2 of acme"
        assert len(hook.bodies) == 1 and hook.posts == 3, "two failures, then delivered once"
        assert "seal leak, critical, risk 92 %" in hook.bodies[0]["text"]

        with session(world.engine) as sess:
            alert_id = sess.scalar(select(Alert.id).where(Alert.machine_id == world.machines["acme"][2]))
            statuses = sorted(sess.scalars(select(OutboxMessage.status)).all())
        assert statuses == ["cancelled", "delivered", "delivered"]  # the unsubscribed address got nothing
        assigned = client.post(
            f"{API_PREFIX}/alerts/{alert_id}/assign", json={"assignee_id": world.users["tech"]}, headers=tech
        )
        assert assigned.status_code == 200
        policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
        _route_all(world)
    assert [m["Subject"] for m in sink.messages][1:] == ["Alert assigned: acme-pump-2 of acme"]
    assert len(hook.bodies) == 2 and hook.bodies[1]["text"].startswith("Alert assigned")


def test_a_disabled_user_is_notified_no_more(database_url, sink) -> None:
    """Someone left: the admin disabled the user; its subscriptions stay until someone deletes them."""
    world = build_world(database_url, smtp_url=sink.url, alert_escalate_after_min=10**6)
    with world.client() as client:
        mail = {"channel": "email", "address": "leaver@oem.example"}
        assert client.post(SUBSCRIBE, json=mail, headers=world.headers("tech")).status_code == 201
    add_prediction(world.engine, world.machines["acme"][2], risk=0.92, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())  # queued while still active
    assert auth.set_disabled(engine=world.engine, name="tech", disabled=True)
    add_prediction(world.engine, world.machines["globex"][2], risk=0.93, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())

    routing.deliver_due(engine=world.engine, settings=world.settings)

    assert sink.messages == []
    with session(world.engine) as sess:
        rows = sess.execute(select(OutboxMessage.status, OutboxMessage.last_error)).all()
    assert [tuple(row) for row in rows] == [("cancelled", "subscriber disabled")]


def test_email_subscribed_without_smtp_is_accepted_with_a_warning_and_the_router_says_so(
    database_url, sink, caplog
) -> None:
    """The demo has no SMTP: e-mail subscriptions stay possible, but nobody may believe they are sent."""
    world = build_world(database_url, webhook_url="http://127.0.0.1:9/crm")
    tech = world.headers("tech")
    with world.client() as client:
        mail = client.post(SUBSCRIBE, json={"channel": "email", "address": "t@oem.example"}, headers=tech)
        hook = {"channel": "webhook", "address": "https://hooks.example.com/T1"}
        webhook = client.post(SUBSCRIBE, json=hook, headers=tech)
        listed = client.get(SUBSCRIBE, headers=tech).json()
    assert (mail.status_code, webhook.status_code) == (201, 201)
    assert "SERVICECAST_SMTP_URL is unset" in mail.json()["warning"]
    assert webhook.json()["warning"] is None
    assert [s["warning"] for s in listed] == [mail.json()["warning"], None]

    stop = threading.Event()
    stop.set()  # only the start-up: no pass
    for settings in (world.settings, world.settings.model_copy(update={"smtp_url": sink.url})):
        caplog.clear()
        routing.run_router(engine=world.engine, settings=settings, stop=stop)
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        if settings.smtp_url:
            assert warned == []
        else:
            assert len(warned) == 1 and "1 e-mail notification subscription" in warned[0], warned
            assert "SERVICECAST_SMTP_URL is unset" in warned[0]


def test_an_oem_limit_alert_is_told_with_the_sensor_as_its_type_names_it(database_url, sink) -> None:
    # Its mode is `limit:vibration_rms_mm_s`: the e-mail said "vibration rms mm s beyond its OEM limit".
    world = build_world(database_url, smtp_url=sink.url, alert_escalate_after_min=10**6)
    machine_types.apply_file(engine=world.engine, path=TYPES_FILE)
    with served(create_app(world.settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        mail = {"channel": "email", "address": "tech@oem.example"}
        assert client.post(SUBSCRIBE, json=mail, headers=world.headers("tech")).status_code == 201
    machine = world.machines["acme"][2]
    add_prediction(world.engine, machine, risk=1.0, mode="limit:vibration_rms_mm_s", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
    _route_all(world)
    [message] = sink.messages
    assert "acme-pump-2 of acme — vibration beyond its OEM limit, critical" in message.get_content()
