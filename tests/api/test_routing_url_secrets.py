"""A failed delivery to a URL that carries its secret (path, ?token=, password) says where it failed, and
neither the outbox row, the audit trail, the log nor a disabled subscription's reason (API and console)
repeats the secret, even when the receiver's error answer, the SMTP server's or the HTTP client's error
quotes the URL."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from api import delivery, policy, routing
from api.app import API_PREFIX, create_app
from fleet.db import session
from fleet.tables import OutboxMessage, WorkflowEvent, utcnow
from tests.api.routing_support import SECRET, SmtpSink, approved_offers, serve_http, settings_for, stop_http
from tests.api.support import add_prediction, build_world
from tests.console.client import ConsoleClient, sign_in


class EchoingReceiver:
    """Answers every POST `status` (404) with the request's path and query in the body, as Express's
    default does, after `pad` characters (a number of x's, or the text itself)."""

    def __init__(self, pad: int | str, status: int = 404) -> None:
        fill = "x" * pad if isinstance(pad, int) else pad

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("content-length", 0)))
                body = f"{fill}<pre>Cannot POST {self.path}</pre>".encode()
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = serve_http(Handler)
        self.port, self.pad = self.server.server_address[1], pad

    def stop(self) -> None:
        stop_http(self.server)


@pytest.fixture
def echoing(request: pytest.FixtureRequest):
    """A running receiver; parametrise indirectly with the padding before its echo."""
    receiver = EchoingReceiver(getattr(request, "param", 0))
    yield receiver
    receiver.stop()


def _deliver_twice(engine, settings) -> tuple[OutboxMessage, list[WorkflowEvent]]:
    """Two passes: a retried attempt, then the dead letter; the row and its offer's audit lines."""
    routing.deliver_due(engine=engine, settings=settings)
    with session(engine) as sess:
        sess.execute(OutboxMessage.__table__.update().values(next_attempt_at=OutboxMessage.created_at))
    routing.deliver_due(engine=engine, settings=settings)
    with session(engine) as sess:
        row = sess.scalars(select(OutboxMessage)).one()
        trail = list(sess.scalars(select(WorkflowEvent).where(WorkflowEvent.action == "delivery_failed")))
        sess.expunge_all()
    return row, trail


def _deliver_to(echoing: EchoingReceiver, engine, caplog) -> tuple[OutboxMessage, list[WorkflowEvent]]:
    """`_deliver_twice` to the receiver at a URL whose path and query carry secrets, the log captured."""
    url = f"http://127.0.0.1:{echoing.port}/services/T0SECRETA/B0SECRETB/XXXXslackSECRET?token=tok-SECRET-1"
    settings = settings_for(webhook_url=url, webhook_secret=SECRET, route_max_attempts=2)
    approved_offers(engine, settings)
    with caplog.at_level(logging.INFO, logger="api"):
        return _deliver_twice(engine, settings)


@pytest.mark.expect_logged_errors  # the dead letter is logged as an error
# 159: the kept 200 characters end inside the path's second secret segment, B0SE|CRETB.
@pytest.mark.parametrize("echoing", [0, 159], indirect=True)
def test_a_receiver_quoting_the_secret_path_and_token_is_not_repeated(engine, echoing, caplog):
    row, trail = _deliver_to(echoing, engine, caplog)

    said = f"{'x' * echoing.pad}<pre>Cannot POST /services/***?token=***</pre>"[: delivery.ERROR_TEXT]
    assert row.status == "dead" and row.last_error == f"HTTP 404: {said}"
    assert [event.data["error"] for event in trail] == [row.last_error] * 2
    assert "HTTP 404" in caplog.text
    assert "SECRET" not in caplog.text


@pytest.mark.expect_logged_errors
# The answer is read to 200 characters past the URL's length in bytes, here inside the token's echo: blank
# lines (an HTML page's indentation), which one_line makes one space, or characters of 3 bytes.
@pytest.mark.parametrize("echoing", ["\n" + " " * 209, "€" * 70], indirect=True)
def test_a_secret_the_read_cuts_in_half_is_not_repeated(engine, echoing, caplog):
    row, _ = _deliver_to(echoing, engine, caplog)

    fill = echoing.pad.strip()
    assert row.status == "dead" and row.last_error == f"HTTP 404: {fill}<pre>Cannot POST /services/***?token="
    assert "tok-S" not in caplog.text


@pytest.mark.expect_logged_errors
def test_an_http_client_error_quoting_a_password_is_not_repeated(engine, echoing, caplog):
    """An unencoded / ends the authority inside the password: httpx names the rest of it as a bad port."""
    settings = settings_for(
        webhook_url=f"http://crm:pw-SECRET/x@127.0.0.1:{echoing.port}/hook",
        webhook_secret=SECRET,
        route_max_attempts=2,
    )
    approved_offers(engine, settings)
    with caplog.at_level(logging.INFO, logger="api"):
        row, trail = _deliver_twice(engine, settings)

    assert row.status == "dead" and row.last_error == "invalid URL: Invalid port: '***'"
    assert [event.data["error"] for event in trail] == [row.last_error] * 2
    assert "SECRET" not in caplog.text


def test_an_smtp_url_whose_password_ends_its_host_is_refused_without_repeating_the_password():
    """urlsplit ends the host at the / inside the password, and its error quotes the rest as the port."""
    settings = settings_for(smtp_url="smtp://mailer:pw-SECRET/x@smtp.example:25", mail_to="crm@oem.example")
    problem = delivery.config_problem(settings)
    assert problem is not None and problem.startswith("invalid setting SERVICECAST_SMTP_URL: bad port")
    assert "SECRET" not in problem


def _quote_the_login(_server, _session, _envelope, _mechanism, auth: LoginPassword) -> AuthResult:  # noqa: ANN001
    """An SMTP server refusing a login and naming it in its answer, password and all."""
    said = f"535 5.7.8 {auth.login.decode()}:{auth.password.decode()} not accepted"
    return AuthResult(success=False, handled=False, message=said)


@pytest.mark.expect_logged_errors  # the dead letter
def test_an_smtp_server_quoting_the_password_is_not_repeated(engine, caplog):
    sink = SmtpSink()
    sink.controller = Controller(
        sink, hostname="127.0.0.1", port=sink.port, auth_require_tls=False, authenticator=_quote_the_login
    )
    sink.controller.start()
    try:
        # The password as the URL carries it, percent-encoded; the server quotes it decoded.
        url = f"smtp://mailer:pw%2BSECRET@127.0.0.1:{sink.port}"
        settings = settings_for(smtp_url=url, mail_to="crm@oem.example", route_max_attempts=2)
        approved_offers(engine, settings)
        with caplog.at_level(logging.INFO, logger="api"):
            row, trail = _deliver_twice(engine, settings)
    finally:
        sink.controller.stop()

    assert row.status == "dead"
    assert row.last_error == "SMTP SMTPAuthenticationError: (535, b'5.7.8 mailer:*** not accepted')"
    assert [event.data["error"] for event in trail] == [row.last_error] * 2
    assert "SECRET" not in caplog.text


@pytest.mark.expect_logged_errors  # the dead letter
def test_a_gone_notification_webhook_quoting_its_token_is_not_repeated(database_url, caplog):
    """The receiver's 410 quotes the subscription's URL: the dead row, the subscription's reason for being
    disabled (API and console) and the log name it masked."""
    echoing = EchoingReceiver(0, status=410)
    world = build_world(
        database_url, route_timeout_s=2.0, alert_escalate_after_min=10**6, webhook_allow_networks="127.0.0.1"
    )
    url = f"http://127.0.0.1:{echoing.port}/hooks/T0SECRETA/hookSECRET?token=tok-SECRET-1"
    subscriptions = f"{API_PREFIX}/notifications/subscriptions"
    tech = world.headers("tech")
    try:
        with world.client() as client:
            body = {"channel": "webhook", "address": url}
            assert client.post(subscriptions, json=body, headers=tech).status_code == 201
        machine = world.machines["acme"][2]
        add_prediction(world.engine, machine, risk=0.92, mode="seal_leak", hours_ahead=20)
        policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
        with caplog.at_level(logging.INFO, logger="api"):
            routing.deliver_due(engine=world.engine, settings=world.settings)
    finally:
        echoing.stop()

    said = "HTTP 410: the endpoint is gone, not retried. <pre>Cannot POST /hooks/***?token=***</pre>"
    with session(world.engine) as sess:
        assert sess.execute(select(OutboxMessage.status, OutboxMessage.last_error)).all() == [("dead", said)]
    with world.client() as client:
        [sub] = client.get(subscriptions, headers=tech).json()
    assert sub["disabled_reason"] == f"the webhook answered {said}"
    with ConsoleClient(create_app(world.settings)) as console:
        sign_in(console, world, "tech")
        page = console.get("/notifications").text
    assert "Cannot POST /hooks/***?token=***" in page
    assert "SECRET" not in page and "SECRET" not in caplog.text
