"""Transports for outbox events: a signed webhook POST (Standard Webhooks) and an e-mail over SMTP.

Each sender either returns (the destination took the event) or raises `DeliveryError` with a short,
loggable reason; retry and bookkeeping live in `api.routing`.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parsedate_to_datetime
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
from standardwebhooks import Webhook

from fleet.redaction import redact_text
from fleet.settings import Settings, env_name

CONTENT_TYPE = "application/cloudevents+json"
USER_AGENT = "servicecast-router/1"
# An attempt's connection is shut down after this many route timeouts: the timeout bounds each read, so
# a peer answering a byte at a time would otherwise hold the router for ever. The lease outlasts it.
ATTEMPT_TIMEOUTS = 3
RESOLVE_S = 10.0  # how long a name may take to resolve when no connect timeout is set
ERROR_TEXT = 200  # how much of an error answer is read and kept
# C0 and C1 control characters and the Unicode line/paragraph separators: none may reach a mail header.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")


PeerCheck = Callable[[str], None]


class DeliveryError(Exception):
    """The destination did not take the event; the message says why (it becomes `last_error`)."""

    final = False  # True: another attempt cannot help, the row is dead-lettered at once

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s  # how long the receiver asked us to wait (its Retry-After)


class Gone(DeliveryError):
    """The receiver answered 410 Gone: its endpoint is deleted, and it asks not to be sent to again."""

    final = True


# A host name → its addresses (IP literals); OSError when it has none.
Resolve = Callable[[str], list[str]]


def system_resolve(host: str) -> list[str]:
    """The addresses the system's resolver (getaddrinfo) gives for `host`."""
    return [str(sockaddr[0]) for *_, sockaddr in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)]


def addresses(host: str, *, within_s: float, resolve: Resolve = system_resolve) -> list[str]:
    """`host`'s addresses (an IP literal is its own); `DeliveryError` when it has none or the resolver has
    not answered within `within_s` (its thread is left to end when the resolver gives up)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    answer: list[list[str] | Exception] = []
    done = threading.Event()

    def look_up() -> None:
        try:
            answer.append(resolve(host))
        except Exception as exc:  # noqa: BLE001 - whatever it is, it is the reason the name has no address
            answer.append(exc)
        finally:
            done.set()

    threading.Thread(target=look_up, name=f"resolve {host}", daemon=True).start()
    if not done.wait(within_s):
        raise DeliveryError(f"cannot resolve {host}: no answer within {within_s:g} s"[:500])
    found = answer[0]
    if isinstance(found, Exception) or not found:
        raise DeliveryError(f"cannot resolve {host}: {found or 'no address'}"[:500])
    return found


T = TypeVar("T")


def connect_first(
    found: list[str], connect: Callable[[str], T], failed: tuple[type[Exception], ...] = (OSError,)
) -> T:
    """`connect` to the first of `found` that answers; if none does, the last one's error."""
    for address in found[:-1]:
        try:
            return connect(address)
        except failed:
            continue  # nothing was sent: the next address may answer
    return connect(found[-1])


def event_body(event: dict) -> str:
    """The exact JSON text that is signed and sent."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def signed_headers(*, secret: str, event_id: str, body: str, at: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers; `webhook-id` is the event id so that receivers can dedupe."""
    at = at or datetime.now(UTC)
    return {
        "content-type": f"{CONTENT_TYPE}; charset=utf-8",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, at, body),
    }


def post_webhook(client: httpx.Client, *, url: str, secret: str, event: dict) -> None:
    """POST the event; any 2xx is success, anything else (or a network error) raises `DeliveryError`."""
    body = event_body(event)
    headers = signed_headers(secret=secret, event_id=event["id"], body=body)
    _post(client, url, content=body.encode(), headers=headers)


def post_incoming_webhook(
    client: httpx.Client, *, url: str | None, text: str, check_peer: PeerCheck | None = None
) -> None:
    """POST `{"text": …}` to a Teams/Slack-style incoming webhook; non-2xx raises `DeliveryError`.

    `check_peer` is called with the address the connection reached, before anything is sent; it raises
    `DeliveryError` to refuse it.
    """
    if not url:
        raise DeliveryError("the subscription has no webhook URL")
    _post(client, url, json={"text": text}, headers={"user-agent": USER_AGENT}, check_peer=check_peer)


def _post(
    client: httpx.Client,
    url: str,
    *,
    headers: dict[str, str],
    check_peer: PeerCheck | None = None,
    **body: object,
) -> None:
    """POST within `ATTEMPT_TIMEOUTS` timeouts; a 2xx body is never read, an error's up to `ERROR_TEXT`."""
    deadline = _Deadline(ATTEMPT_TIMEOUTS * (client.timeout.read or 0.0))
    headers = headers | {"accept-encoding": "identity"}  # the error text is read raw

    def trace(event: str, info: dict) -> None:
        if check_peer is not None and event == "connection.connect_tcp.complete":
            sock = info["return_value"].get_extra_info("socket")
            try:
                check_peer(sock.getpeername()[0])
            except DeliveryError:
                sock.close()  # httpcore never saw the connection: it is ours to close
                raise
        deadline.trace(event, info)

    try:
        with client.stream("POST", url, headers=headers, extensions={"trace": trace}, **body) as answer:
            if answer.status_code == 410:
                raise Gone(f"HTTP 410: the endpoint is gone, not retried. {_start_of(answer, url)}".strip())
            if not 200 <= answer.status_code < 300:
                wait = retry_after_s(answer.headers.get("retry-after"), now=datetime.now(UTC))
                raise DeliveryError(
                    f"HTTP {answer.status_code}: {_start_of(answer, url)}", retry_after_s=wait
                )
    except (httpx.InvalidURL, UnicodeError) as exc:  # UnicodeError: a bad IDNA label
        raise DeliveryError(f"invalid URL: {redact_text(str(exc), url)}") from exc
    except httpx.HTTPError as exc:
        if deadline.expired:
            raise DeliveryError(f"no complete answer within {deadline.seconds:g} s") from exc
        raise DeliveryError(f"{type(exc).__name__}: {redact_text(str(exc), url)}"[:500]) from exc
    finally:
        deadline.cancel()


def retry_after_s(value: str | None, *, now: datetime) -> float | None:
    """The seconds a Retry-After header asks to wait (RFC 9110: whole seconds or an HTTP date), or None when
    it says nothing usable."""
    value = (value or "").strip()
    if value.isascii() and value.isdigit():
        return float(value) if len(value) <= 12 else math.inf  # int() refuses 4,300 digits and more
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, (when.replace(tzinfo=when.tzinfo or UTC) - now).total_seconds())


def _start_of(answer: httpx.Response, url: str) -> str:
    """The first `ERROR_TEXT` characters of an error answer, as far as it arrives, as one line of text (a
    NUL byte, which PostgreSQL cannot store, left the row pending for ever), without the secrets of `url`
    it may quote (masked before the cut, so that none is left cut in half; one the read cut is dropped)."""
    limit = ERROR_TEXT + len(url.encode())
    data = b""
    try:
        for chunk in answer.iter_raw():
            data += chunk
            if len(data) >= limit:
                break
    except httpx.HTTPError:
        pass
    text = one_line(data[:limit].decode("utf-8", "replace"))
    return redact_text(text, url, cut=len(data) >= limit)[:ERROR_TEXT]


class _Deadline:
    """Shuts down an attempt's socket once `seconds` have passed since it connected."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.expired = seconds, False
        self._socket: Callable[[], socket.socket | None] = lambda: None  # the newest: TCP, then TLS over it
        self._timer: threading.Timer | None = None

    def trace(self, event: str, info: dict) -> None:
        """httpcore's trace hook: arm the timer when the connection is made, follow it into TLS."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info["return_value"]
            self._socket = lambda: stream.get_extra_info("socket")
        if event == "connection.connect_tcp.complete":
            self.arm(self._socket)

    def arm(self, current_socket: Callable[[], socket.socket | None]) -> None:
        """Start the clock, once; `current_socket` gives the socket to shut down when it runs out."""
        self._socket = current_socket
        if self.seconds > 0 and self._timer is None:
            self._timer = threading.Timer(self.seconds, self._shut)
            self._timer.daemon = True
            self._timer.start()

    def _shut(self) -> None:
        self.expired = True
        sock = self._socket()
        try:  # the plain socket's shutdown, also under TLS: it wakes the blocked read, which then fails
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except (OSError, TypeError):
            pass  # closed already, or not connected yet (TypeError: None)

    def cancel(self) -> None:
        """Disarm the timer (the attempt is over)."""
        if self._timer is not None:
            self._timer.cancel()


def one_line(text: str) -> str:
    """`text` fit for a mail header: control characters and runs of whitespace become one space."""
    return " ".join(CONTROL.sub(" ", text).split())


def recipient_problem(address: str) -> str | None:
    """Why a To header of `address` would not name exactly that one mailbox, or None."""
    # The header reads commas, groups, comments and encoded words in it: two recipients hide in one address.
    header = EmailMessage()
    try:
        header["To"] = address
        found = [mailbox.addr_spec for mailbox in header["To"].addresses]
    except Exception as exc:  # its parser meets hostile text with IndexError, AttributeError, TypeError…
        return f"a mail header cannot carry it ({type(exc).__name__} in Python's email package)"
    return None if found == [address] else f"a mail to it would go to {', '.join(found) or 'nobody'}"


def message_id(event_id: str, public_url: str) -> str:
    """The Message-ID of an event's e-mail: the same for every retry, so mail systems can dedupe."""
    domain = urlsplit(public_url).hostname or "servicecast.local"
    # Only atext may stand left of the @ (RFC 5322): a parser cut `notify-email:3` at the colon, so every
    # subscriber of one alert event got the same id.
    return f"<{NOT_ATEXT.sub('.', event_id)}@{domain}>"


def render_email(*, event: dict, mail_from: str, mail_to: str, public_url: str) -> EmailMessage:
    """A plain-text summary of the offer with the CloudEvent attached as JSON."""
    data = event["data"]
    account, machine = data["account"], data["machine"]
    price, value = data["price"], data["expected_value"]
    lines = [
        f"An account manager approved a service offer for {account['name']} ({account['tenant']}).",
        "",
        f"Offer:          {data['offer_id']} — {data['recommendation']['title']}"
        f" ({data['recommendation']['catalog_item']})",
        f"Machine:        {machine_words(machine)}",
        f"Failure mode:   {data['failure_mode']}",
        f"Risk:           {data['risk']:.0%}",
        f"Price:          {price['amount']:.2f} {price['currency']}",
        f"Expected value: {value['amount']:.2f} {value['currency']}",
        f"Reason:         {data['reason']}",
        f"Evidence:       {data['evidence_url']}",
    ]
    subject = f"Service offer approved: {data['recommendation']['title']} for {account['name']}"
    return event_email(
        event=event, subject=subject, lines=lines, mail_from=mail_from, mail_to=mail_to, public_url=public_url
    )


def render_closing_email(*, event: dict, mail_from: str, mail_to: str, public_url: str) -> EmailMessage:
    """A plain-text note that an offer the CRM has is closed: the offer, its machine, what happened and why;
    the ids alone when the event carries nothing else (consent to offers revoked)."""
    data = event["data"]
    status = data["status"]
    if "machine" not in data:
        subject = f"Service offer {data['offer_id']} {status}"
        lines = [
            f"Service offer {data['offer_id']} of customer id {data['customer_id']} is {status}: it may no "
            "longer be sold. Close it in the CRM."
        ]
    else:
        title, machine = data["recommendation"]["title"], data["machine"]
        subject = f"Service offer {status}: {title} for {machine['code']} ({machine['type']})"
        lines = [
            f"The service offer below is {status}: {data['reason']}. It may no longer be sold; close it in "
            "the CRM.",
            "",
            f"Offer:    {data['offer_id']} — {title} ({data['recommendation']['catalog_item']})",
            f"Machine:  {machine_words(machine)}",
            f"Evidence: {data['evidence_url']}",
        ]
    return event_email(
        event=event, subject=subject, lines=lines, mail_from=mail_from, mail_to=mail_to, public_url=public_url
    )


def machine_words(machine: dict) -> str:
    """An event's machine in words: its code, type and serial."""
    return f"{machine['code']} ({machine['type']}, serial {machine['serial'] or 'n/a'})"


def event_email(
    *, event: dict, subject: str, lines: list[str], mail_from: str, mail_to: str, public_url: str
) -> EmailMessage:
    """An event's e-mail to the CRM: `lines` of plain text, the event's id in the headers (the same Message-ID
    for every retry) and the CloudEvent attached as JSON."""
    msg = EmailMessage()
    msg["Subject"] = one_line(subject)
    msg["From"] = mail_from
    msg["To"] = ", ".join(_recipients(mail_to))
    msg["Message-ID"] = message_id(event["id"], public_url)
    msg["Date"] = format_datetime(datetime.fromisoformat(event["time"].replace("Z", "+00:00")))
    msg["X-Servicecast-Event-Id"] = event["id"]
    footer = ["", f"Event id {event['id']}; the CloudEvent is attached as event.json."]
    msg.set_content("\n".join([*lines, *footer]) + "\n")
    msg.add_attachment(
        event_body(event).encode(), maintype="application", subtype="cloudevents+json", filename="event.json"
    )
    return msg


def send_email(
    *, smtp_url: str, timeout_s: float, message: EmailMessage, resolve: Resolve = system_resolve
) -> str | None:
    """Send over SMTP (`smtp://`, `smtp://…?starttls=1` or `smtps://`, optional user:password); the server's
    name is resolved by `addresses` within `timeout_s`.

    Returns None, or which recipients the server refused while it took the others: the message went out,
    and sending it again would repeat it to everyone who has it.
    """
    parts = urlsplit(smtp_url)
    starttls = parse_qs(parts.query).get("starttls", ["0"])[0].lower() in ("1", "true", "yes")
    # smtplib's timeout bounds each read: a server dripping a byte at a time would hold the router for ever.
    deadline = _Deadline(ATTEMPT_TIMEOUTS * timeout_s)
    try:
        if parts.scheme == "smtps":
            client = _SmtpSsl(resolve, timeout=timeout_s, context=ssl.create_default_context())
        else:
            client = _Smtp(resolve, timeout=timeout_s)
        deadline.arm(lambda: getattr(client, "sock", None))  # STARTTLS replaces the socket
        with client:
            client.connect(parts.hostname, parts.port or (465 if parts.scheme == "smtps" else 25))
            if starttls:
                client.starttls(context=ssl.create_default_context())
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            refused = client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        if deadline.expired:
            raise DeliveryError(f"SMTP: no complete answer within {deadline.seconds:g} s") from exc
        raise DeliveryError(f"SMTP {type(exc).__name__}: {redact_text(str(exc), smtp_url)}"[:500]) from exc
    finally:
        deadline.cancel()
    if not refused:
        return None
    said = "; ".join(
        f"{to} ({code} {one_line(text.decode(errors='replace'))})" for to, (code, text) in refused.items()
    )
    return f"SMTP server refused {said}"[:500]


class _Smtp(smtplib.SMTP):
    """smtplib's client, connecting to the addresses `addresses` gives (TLS still checks the host name)."""

    def __init__(self, resolve: Resolve, **kwargs: object) -> None:
        self.resolve = resolve
        super().__init__(**kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # The name TLS checks the certificate against (smtps and STARTTLS): smtplib sets it only when the
        # host is given to the constructor, which connects at once, and without it no TLS mail was sent.
        self._host = host
        found = addresses(host, within_s=timeout, resolve=self.resolve)
        return connect_first(
            found, lambda address: socket.create_connection((address, port), timeout, self.source_address)
        )


class _SmtpSsl(smtplib.SMTP_SSL, _Smtp):
    """`_Smtp` over TLS from the start (smtps://): SMTP_SSL wraps the socket `_Smtp` connects."""

    def __init__(self, resolve: Resolve, **kwargs: object) -> None:
        self.resolve = resolve
        smtplib.SMTP_SSL.__init__(self, **kwargs)


def smtp_url_problem(smtp_url: str) -> str | None:
    """Why an SMTP URL cannot be used, or None."""
    parts = urlsplit(smtp_url)
    if parts.scheme not in ("smtp", "smtps"):
        return f"scheme must be smtp:// or smtps://, got {parts.scheme or 'none'}://"
    if not parts.hostname:
        return "no host in SMTP URL"
    try:
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError as exc:
        return f"bad port in SMTP URL: {redact_text(str(exc), smtp_url)}"
    return None


def _recipients(mail_to: str) -> list[str]:
    return [addr.strip() for addr in mail_to.split(",") if addr.strip()]


def config_problem(settings: Settings) -> str | None:
    """Why the router cannot run with these settings (one line naming the variable), or None."""
    webhook, secret = env_name("webhook_url"), env_name("webhook_secret")
    smtp, mail_to = env_name("smtp_url"), env_name("mail_to")
    if not settings.webhook_url and not settings.smtp_url:
        return f"nothing to route to: set {webhook} (with {secret}) or {smtp} and {mail_to}"
    if settings.webhook_url:
        if not settings.webhook_url.startswith(("http://", "https://")):
            return f"invalid setting {webhook}: must be an http:// or https:// URL"
        if settings.webhook_secret is None:  # a bad one is refused when the settings load
            return f"{secret} is required with {webhook} (webhooks are signed)"
    if settings.smtp_url:
        if problem := smtp_url_problem(settings.smtp_url):
            return f"invalid setting {smtp}: {problem}"
        if not settings.mail_to:
            return f"{mail_to} is required with {smtp}"
    return None
