"""Real parts for router tests: a signed-webhook receiver that dedupes, an SMTP sink, approved offers."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from standardwebhooks import Webhook, WebhookVerificationError

from api import events
from fleet import registration
from fleet.db import session
from fleet.settings import Settings
from fleet.tables import Customer, Machine, Offer, Telemetry, User, utcnow
from tests.services import free_port

SECRET = "whsec_" + base64.b64encode(b"servicecast-test-secret-32-bytes").decode()
# Values that must never leave servicecast in an event: a telemetry reading and a person's address.
READING = 987.654321
PERSON_EMAIL = "amy.account-manager@oem.example"


def serve_http(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """An HTTP server on a free port of 127.0.0.1, serving in a thread of its own until `stop_http`."""
    return _serve(ThreadingHTTPServer(("127.0.0.1", free_port()), handler))


def _serve(server: ThreadingHTTPServer) -> ThreadingHTTPServer:
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def stop_http(server: ThreadingHTTPServer) -> None:
    """Stop a server `serve_http` started and close its socket."""
    server.shutdown()
    server.server_close()


@dataclass
class Received:
    """One request as the receiver saw it."""

    webhook_id: str
    at: float
    status: int


@dataclass
class WebhookReceiver:
    """A CRM stand-in: verifies Standard Webhooks signatures and applies each `webhook-id` once.

    `fail_first` answers `fail_status` (500) to the first N requests of each event (with `retry_after`, if
    given, as its Retry-After header); `slow_first_s` makes the
    very first accepted request wait that long before answering (after it has been applied, as a real CRM
    would).
    """

    fail_first: int = 0
    fail_status: int = 500
    retry_after: str | None = None  # the Retry-After header of each failed answer
    slow_first_s: float = 0.0
    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    accepted: dict[str, dict] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    bad_signatures: int = 0
    in_flight: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._slow_used = False
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/crm/events"

    def start(self) -> WebhookReceiver:
        _serve(self.server)
        return self

    def stop(self) -> None:
        stop_http(self.server)

    def attempts(self) -> Counter:
        """Requests per webhook-id."""
        return Counter(r.webhook_id for r in self.requests)

    def _handle(self, headers: dict[str, str], body: bytes) -> tuple[int, float]:
        try:
            Webhook(SECRET).verify(body, headers)
        except WebhookVerificationError:
            with self._lock:
                self.bad_signatures += 1
            return 401, 0.0
        webhook_id = headers["webhook-id"]
        with self._lock:
            seen = sum(1 for r in self.requests if r.webhook_id == webhook_id)
            status = self.fail_status if seen < self.fail_first else 200
            self.requests.append(Received(webhook_id, time.monotonic(), status))
            if status != 200:
                return status, 0.0
            if webhook_id in self.accepted:
                self.duplicates.append(webhook_id)
                return 200, 0.0
            self.accepted[webhook_id] = json.loads(body)
            delay = 0.0
            if self.slow_first_s and not self._slow_used:
                self._slow_used, delay = True, self.slow_first_s
                self.in_flight.set()
            return 200, delay

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status, delay = receiver._handle({k.lower(): v for k, v in self.headers.items()}, body)
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    if status != 200 and receiver.retry_after is not None:
                        self.send_header("retry-after", receiver.retry_after)
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the router died while we were slow; it will redeliver

            def log_message(self, *_args: object) -> None:
                pass

        return Handler


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a free port that keeps every message."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []
        self.envelopes: list[list[str]] = []  # the RCPT TO addresses of each message
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server, _session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's hook
        self.raw.append(envelope.content)
        self.envelopes.append(list(envelope.rcpt_tos))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


def settings_for(**values: object) -> Settings:
    """Settings for a router test: a public URL, quick backoff, the product's timeout (tests of timeouts set
    their own)."""
    base: dict[str, object] = {
        "public_url": "https://servicecast.example",
        "route_backoff_base_s": 0.05,
        "route_backoff_max_s": 2.0,
        # The SMTP and webhook sinks answer from a thread of the test's own worker: in a clean-clone CI at
        # four workers on two cores one took longer than 2 s to answer, and the delivery timed out.
        "route_timeout_s": 10.0,
    }
    return Settings(**(base | values))


def approved_offers(
    engine: Engine, settings: Settings, *, tenant: str = "acme", count: int = 1, enqueue: bool = True
) -> list[int]:
    """A customer with `offers` consent, a machine with telemetry, approved offers (outbox rows enqueued)."""
    now = utcnow()
    spec = {
        "tenant": tenant,
        "customer_name": f"{tenant.title()} Industries",
        "machine": f"{tenant}-pump-1",
        "machine_type": "pump",
        "serial": "SN-7",
    }
    ids = registration.register_machines(
        engine=engine, machines=[spec], purposes={tenant: ("offers",)}, granted_by="test"
    )
    customer_id, machine_id = ids[(tenant, spec["machine"])]
    with session(engine) as sess:
        customer, machine = sess.get_one(Customer, customer_id), sess.get_one(Machine, machine_id)
        sess.add(User(name=f"amy-{tenant}", email=PERSON_EMAIL, role="account_manager"))
        sess.add(
            Telemetry(
                customer_id=customer.id,
                machine_id=machine.id,
                seq=1,
                ts=now,
                readings={"vibration_rms_mm_s": READING},
                received_at=now,
            )
        )
        offers = [
            Offer(
                customer_id=customer.id,
                machine_id=machine.id,
                failure_mode="bearing_wear",
                catalog_item="inspection_visit",
                title=f"Bearing inspection #{i}",
                reason="vibration rose 40 % in 3 days",
                price=480.0,
                currency="EUR",
                expected_value=2150.0,
                risk=0.73,
                status="approved",
                decided_at=now,
            )
            for i in range(count)
        ]
        sess.add_all(offers)
        sess.flush()
        if enqueue:
            for offer in offers:
                events.enqueue(sess, offer=offer, customer=customer, machine=machine, settings=settings)
        return [offer.id for offer in offers]


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll until `predicate()` is true or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def router_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a `servicecast route` child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    env["SERVICECAST_DATABASE_URL"] = database_url
    env.update({f"SERVICECAST_{k.upper()}": v for k, v in settings.items()})
    return env
