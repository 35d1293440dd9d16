"""SMTP servers that refuse or fail: each attempt fails with the server's reason and is retried, a
recipient refused among accepted ones is recorded, and nothing is sent again after success."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import Engine, select

from api import routing
from fleet.db import session
from fleet.tables import OutboxMessage, utcnow
from tests.api.routing_support import SmtpSink, approved_offers, settings_for, wait_for
from tests.services import free_port


class PickySink(SmtpSink):
    """An SMTP sink that refuses recipients named nobody@… and can drop the connection in DATA."""

    def __init__(self, *, hang_up_in_data: bool = False, **controller: object) -> None:
        super().__init__()
        self.hang_up_in_data = hang_up_in_data
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **controller)

    async def handle_RCPT(self, _server, _session, envelope, address, _options) -> str:  # noqa: ANN001, N802
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user here"
        if address.startswith("nul@"):
            return "550 5.1.1 no\x00such\x00user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        if self.hang_up_in_data:
            self.hang_up_in_data = False  # once: the retry goes through
            server.transport.abort()
            return "451 never seen"
        return await super().handle_DATA(server, session, envelope)


class DrippingSmtp:
    """An SMTP server whose greeting drips a byte every `drip_s` (each read is quick, the line never ends)
    for up to `cap` bytes; `cut_off` tells whether the client hung up before that."""

    def __init__(self, *, drip_s: float = 0.05, cap: int = 400) -> None:
        self.drip_s, self.cap, self.cut_off = drip_s, cap, False
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.url = f"smtp://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with self.listener.accept()[0] as conn:
            try:
                conn.sendall(b"220 ")
                for _ in range(self.cap):
                    time.sleep(self.drip_s)
                    conn.sendall(b"a")
                conn.sendall(b"\r\n")
            except OSError:
                self.cut_off = True


def _refuse_login(*_args: object) -> AuthResult:
    return AuthResult(success=False, handled=False)


def _rows(engine: Engine) -> list[tuple[str, str | None]]:
    with session(engine) as sess:
        return [
            (r.status, r.last_error) for r in sess.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        ]


@pytest.fixture
def picky(request: pytest.FixtureRequest):  # noqa: ANN201
    """A running PickySink; parametrise indirectly with its keyword arguments."""
    sink = PickySink(**getattr(request, "param", {}))
    sink.controller.start()
    yield sink
    sink.controller.stop()


@pytest.mark.parametrize(
    ("refused", "said"),
    [
        ("nobody@oem.example", "550 5.1.1 no such user here"),
        # PostgreSQL stores no NUL in text: the delivery could not be recorded and the mail went out again.
        ("nul@oem.example", "550 5.1.1 no such user"),
    ],
)
def test_a_recipient_refused_among_accepted_ones_is_recorded_not_dropped(
    engine: Engine, picky: PickySink, refused: str, said: str
) -> None:
    settings = settings_for(smtp_url=picky.url, mail_to=f"crm@oem.example, {refused}")
    approved_offers(engine, settings)

    report = routing.deliver_due(engine=engine, settings=settings)

    assert report.delivered == 1 and picky.envelopes == [["crm@oem.example"]]
    assert _rows(engine) == [("delivered", f"SMTP server refused {refused} ({said})")]
    routing.deliver_due(engine=engine, settings=settings, now=utcnow() + timedelta(minutes=5))
    assert len(picky.messages) == 1, "a delivered row is never sent again"


@pytest.mark.parametrize(
    ("picky", "url_tail", "reason"),
    [
        ({"hang_up_in_data": True}, "", "SMTPServerDisconnected"),
        ({}, "?starttls=1", "STARTTLS extension not supported"),
        ({"auth_require_tls": False, "authenticator": _refuse_login}, "", "SMTPAuthenticationError"),
    ],
    indirect=["picky"],
)
def test_a_failing_smtp_server_gives_a_reason_and_a_retry(engine: Engine, picky, url_tail, reason) -> None:
    url = picky.url + url_tail
    if "authenticator" in picky.controller.SMTP_kwargs:
        url = url.replace("smtp://", "smtp://router:wrong@")
    settings = settings_for(smtp_url=url, mail_to="crm@oem.example", route_backoff_base_s=0.001)
    approved_offers(engine, settings)

    report = routing.deliver_due(engine=engine, settings=settings)

    assert (report.delivered, report.retried) == (0, 1)
    [(status, error)] = _rows(engine)
    assert status == "pending" and reason in error, error
    assert picky.messages == []
    later = routing.deliver_due(engine=engine, settings=settings, now=utcnow() + timedelta(minutes=1))
    hung_up_once = reason == "SMTPServerDisconnected"  # the server takes the retry
    assert (later.delivered, len(picky.messages)) == ((1, 1) if hung_up_once else (0, 0))


def test_a_server_dripping_its_answer_is_cut_off_at_the_attempt_deadline(engine: Engine) -> None:
    dripping = DrippingSmtp()
    settings = settings_for(smtp_url=dripping.url, mail_to="crm@oem.example", route_timeout_s=1.0)
    approved_offers(engine, settings)

    report = routing.deliver_due(engine=engine, settings=settings)

    assert (report.delivered, report.retried) == (0, 1)
    assert _rows(engine) == [("pending", "SMTP: no complete answer within 3 s")]
    wait_for(lambda: dripping.cut_off, timeout=30, what="the router to hang up on the dripping server")
    dripping.listener.close()
