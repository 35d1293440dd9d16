"""The router: delivers outbox rows (offer events, erasures) to the CRM webhook and by e-mail.

Contract: delivery is at least once. A row is claimed with a lease (its `next_attempt_at` moves past
the longest an attempt can take), sent outside any database transaction, then marked delivered. A
router that dies between sending and marking leaves the row pending; once the lease runs out another
router sends it again with the same event id (`webhook-id` header, e-mail Message-ID). A receiver that
dedupes by that id therefore applies each event exactly once. Failed attempts are retried with
exponential backoff and full jitter until `route_max_attempts`, then the row is dead-lettered. A CRM
webhook answering 410 Gone (its endpoint removed) is the operator's to fix: its rows are held, not dead.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage

import httpx
from sqlalchemy import Engine, exists, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from api import audit, delivery, egress, erasure_events, events, notifications, offer_lifecycle, offers
from fleet import dialect
from fleet.db import session
from fleet.redaction import redact_text
from fleet.settings import Settings, env_name
from fleet.tables import NotificationSubscription, Offer, OutboxMessage, utcnow

log = logging.getLogger(__name__)
OUTBOX = OutboxMessage.__table__
# A claimed row stays invisible this long; it must outlast one attempt (resolving the name and connecting,
# a route timeout each, then cut off after delivery.ATTEMPT_TIMEOUTS more). If it does not, the only harm
# is a duplicate receivers dedupe.
LEASE_TIMEOUTS = delivery.ATTEMPT_TIMEOUTS + 2
LEASE_MARGIN_S = 5.0


@dataclass(slots=True)
class RouteReport:
    """What one `deliver_due` pass did."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    cancelled: int = 0
    held: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"claimed={self.claimed} delivered={self.delivered} retried={self.retried} "
            f"dead={self.dead} cancelled={self.cancelled} held={self.held}"
        )


@dataclass(slots=True)
class Holds:
    """Destinations one router stops sending to, kept across its passes: the CRM webhook that answered
    410 Gone. Its rows stay pending and due (no attempt used up), so a router started with the corrected
    SERVICECAST_WEBHOOK_URL delivers them at once; this one asks the old endpoint again every
    `route_backoff_max_s`, in case the CRM brought it back."""

    until: dict[str, datetime] = field(default_factory=dict)

    def active(self, at: datetime) -> list[str]:
        """The destinations not to claim rows for at `at`."""
        return [dest for dest, until in self.until.items() if until > at]


@dataclass(frozen=True, slots=True)
class Claim:
    """A row this router holds the lease on; `attempt` fences our write-back against a later claimant."""

    id: int
    attempt: int
    destination: str
    event_id: str
    offer_id: int | None
    payload: dict
    cancelled: bool = False
    address: str | None = None  # a notification's e-mail address or incoming-webhook URL


def backoff_delay(attempt: int, *, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): full jitter over an exponential window.

    Uniform in [0, min(max_s, base_s * 2 ** (attempt - 1))], so retries spread out and never synchronise.
    """
    window = min(max_s, base_s * 2 ** max(attempt - 1, 0))
    return (rng or random).uniform(0.0, window)


def lease_seconds(settings: Settings) -> float:
    """How long a claimed row stays invisible to other routers."""
    return LEASE_TIMEOUTS * settings.route_timeout_s + LEASE_MARGIN_S


def deliver_due(
    *,
    engine: Engine,
    settings: Settings,
    now: datetime | None = None,
    limit: int = 100,
    stop: threading.Event | None = None,
    rng: random.Random | None = None,
    holds: Holds | None = None,
    resolve: delivery.Resolve = delivery.system_resolve,
) -> RouteReport:
    """Claim and deliver up to `limit` due rows (pending, `next_attempt_at <= now`), one attempt each.

    Safe with several routers at once: each row is claimed in its own short transaction
    (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the database write lock on SQLite). At least once: see the
    module docstring. `now` fixes the clock for tests; signatures always use the real time. `holds` carries
    the held destinations from one pass to the next (a router's own; None: this pass's); `resolve` looks up
    the receivers' names (the system's resolver; a test's own), each within the route timeout.
    """
    report, holds = RouteReport(), holds if holds is not None else Holds()
    erasure_events.enqueue_notices(engine=engine, settings=settings)
    attempted: list[int] = []
    # The HTTP client is made at the first claim: making one costs ~40 ms of CPU (its TLS contexts), and a
    # router polling an empty outbox every 0.1 s spent most of its time on that (docs/benchmarks.md).
    with contextlib.ExitStack() as stack:
        client: httpx.Client | None = None
        while report.claimed < limit and not (stop and stop.is_set()):
            at = now or utcnow()
            claim = _claim(
                engine,
                at=at,
                exclude=attempted,
                held=holds.active(at),
                lease_s=lease_seconds(settings),
                report=report,
            )
            if claim is None:
                break
            attempted.append(claim.id)
            if claim.cancelled:
                continue
            if client is None:
                client = stack.enter_context(
                    egress.client(timeout_s=settings.route_timeout_s, resolve=resolve)
                )
            try:
                note = _send(claim, settings=settings, client=client, resolve=resolve)
            except Exception as exc:  # noqa: BLE001 - any failure is an attempt that counts toward the dead letter
                secrets = (claim.address, settings.webhook_url, settings.smtp_url)
                if not isinstance(exc, delivery.DeliveryError):
                    told = redact_text("".join(traceback.format_exception(exc)), *secrets)
                    log.error("unexpected error sending %s → %s: %s", claim.event_id, claim.destination, told)
                    said = redact_text(f"{type(exc).__name__}: {exc}", *secrets)
                    exc = delivery.DeliveryError(f"internal {said}"[:500])
                if isinstance(exc, delivery.Gone) and claim.destination == "webhook":
                    _hold(engine, claim, at=at, settings=settings, holds=holds)
                    report.held += 1
                    continue
                # A name's resolver says why in text of its own (`delivery.addresses` keeps it as the reason),
                # unmasked: every reason is masked before it is stored, shown or logged.
                error = redact_text(str(exc), *secrets)
                dead = exc.final or claim.attempt >= settings.route_max_attempts
                _record_failure(
                    engine,
                    claim,
                    error=error,
                    dead=dead,
                    at=at,
                    now=now,
                    settings=settings,
                    rng=rng,
                    asked_s=exc.retry_after_s,
                )
                if isinstance(exc, delivery.Gone):
                    # The endpoint asked not to be sent to again: its later events must not go there either.
                    with session(engine) as sess:
                        notifications.disable_gone(sess, claim.destination, error=error, at=at)
                report.errors.append(f"{claim.event_id} → {claim.destination}: {error}")
                if dead:
                    report.dead += 1
                else:
                    report.retried += 1
            else:
                if holds.until.pop(claim.destination, None) is not None:
                    log.warning("the CRM webhook takes events again: the offers held for it are sent")
                _record_success(engine, claim, at=now or utcnow(), settings=settings, note=note)
                report.delivered += 1
    return report


def run_router(*, engine: Engine, settings: Settings, stop: threading.Event, poll_s: float = 1.0) -> None:
    """Deliver due rows until `stop` is set; database outages are waited out, never fatal."""
    log.info("router started (%s)", ", ".join(events.destinations(settings)) or "no destination")
    _warn_at_start(engine, settings)
    pause, holds = poll_s, Holds()
    while not stop.is_set():
        try:
            report = deliver_due(engine=engine, settings=settings, stop=stop, holds=holds)
        except OperationalError as exc:
            log.warning("router pass failed, database unavailable: %s", str(exc).splitlines()[0])
            pause = min(max(pause * 2, poll_s), 30.0)
            stop.wait(pause)
            continue
        except Exception:
            log.exception("router pass failed")
            stop.wait(max(poll_s, 1.0))
            continue
        pause = poll_s
        if report.claimed:
            log.info("router pass: %s", report.summary())
        else:
            stop.wait(poll_s)
    log.info("router stopped")


def _warn_at_start(engine: Engine, settings: Settings) -> None:
    """One warning at start when people subscribed to e-mail that cannot be sent: each would dead-letter;
    another per CRM destination erasure announcements wait for that this router lacks."""
    try:
        erasure_events.warn_waiting(engine, settings)
        if (why := notifications.unsent(settings, "email")) is None:
            return
        with session(engine) as sess:
            count = sess.scalar(select(func.count()).where(NotificationSubscription.channel == "email"))
    except OperationalError:
        return  # the pass loop waits the outage out
    if count:
        log.warning(
            "%d e-mail notification subscription(s), their notifications dead-lettered: %s", count, why
        )


def _claim(
    engine: Engine, *, at: datetime, exclude: list[int], held: list[str], lease_s: float, report: RouteReport
) -> Claim | None:
    """Take the lease on the next due row (none for a `held` destination); cancel it instead when consent
    or the offer is gone."""
    due = select(OUTBOX.c.id).where(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= at)
    if exclude:
        due = due.where(OUTBOX.c.id.not_in(exclude))
    if held:
        due = due.where(OUTBOX.c.destination.not_in(held))
    due = due.order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id).limit(1)
    due = dialect.skip_locked(due, engine.dialect)
    # One UPDATE … RETURNING as the first statement: on SQLite it takes the write lock up front (so the
    # busy timeout applies), on PostgreSQL the locked row is skipped by every other router.
    take = (
        update(OUTBOX)
        .where(OUTBOX.c.id == due.scalar_subquery())
        .values(attempts=OUTBOX.c.attempts + 1, next_attempt_at=at + timedelta(seconds=lease_s))
        .returning(
            OUTBOX.c.id,
            OUTBOX.c.attempts,
            OUTBOX.c.destination,
            OUTBOX.c.event_id,
            OUTBOX.c.offer_id,
            OUTBOX.c.customer_id,
            OUTBOX.c.event_type,
            OUTBOX.c.payload,
        )
    )
    with session(engine) as sess:
        row = sess.execute(take).one_or_none()
        if row is None:
            return None
        report.claimed += 1
        why = _cancel_reason(
            sess, customer_id=row.customer_id, offer_id=row.offer_id, event_type=row.event_type, at=at
        )
        address, dest = None, row.destination
        if why is None and (sub_id := notifications.subscription_id(dest)) is not None:
            sub, why = notifications.sender(sess, sub_id, event_id=row.event_id, payload=row.payload)
            address = sub and sub.address
            if why is None and (dest := notifications.destination(sub)) != row.destination:
                sess.execute(update(OUTBOX).where(OUTBOX.c.id == row.id).values(destination=dest))
                log.info(
                    "outbox %s (%s): %s stopped, sent by %s instead",
                    row.id,
                    row.event_id,
                    row.destination,
                    dest,
                )
        if why is not None:
            sess.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == row.id)
                .values(status="cancelled", last_error=why, attempts=row.attempts - 1)
            )
            _audit(sess, row.offer_id, "delivery_cancelled", at, destination=row.destination, reason=why)
            report.cancelled += 1
            log.info("outbox %s (%s → %s) cancelled: %s", row.id, row.event_id, row.destination, why)
            return Claim(
                row.id, row.attempts, row.destination, row.event_id, row.offer_id, {}, cancelled=True
            )
        return Claim(row.id, row.attempts, dest, row.event_id, row.offer_id, row.payload, address=address)


def _cancel_reason(
    sess: Session, *, customer_id: int | None, offer_id: int | None, event_type: str, at: datetime
) -> str | None:
    """Checked at send time: an approval goes out only while the consent and the offer still stand.

    An offer still unsent that the policy's sweep will close (past its expiry, "no fault found") does not
    stand either: sent first, the CRM would get it and then at once its closing. Closing events (withdrawn,
    expired) always go: the CRM has the offer and must learn it is closed.
    """
    if offer_id is None or event_type != events.OFFER_APPROVED:
        return None
    if not offers.has_offers_grant(sess, customer_id):
        return "consent revoked"
    offer = sess.get(Offer, offer_id)
    if offer is None or offer.status in ("withdrawn", "rejected", "expired"):
        return f"offer {offer.status if offer else 'deleted'}"
    if offer.status == "approved" and (closing := offer_lifecycle.closing_reason(sess, offer, at)):
        return f"offer closing: {closing}"
    return None


def _send(claim: Claim, *, settings: Settings, client: httpx.Client, resolve: delivery.Resolve) -> str | None:
    """Deliver one claim; returns what went partly wrong though it was delivered, or None."""
    if claim.destination.startswith(notifications.PREFIX + "webhook"):
        rules = egress.Policy(settings.webhook_allow_networks)
        check_peer = rules.guard(claim.address, within_s=settings.route_timeout_s, resolve=resolve)
        delivery.post_incoming_webhook(
            client, url=claim.address, text=claim.payload["text"], check_peer=check_peer
        )
    elif claim.destination.startswith(notifications.PREFIX + "email"):
        if (why := notifications.unsent(settings, "email")) is not None:
            raise delivery.DeliveryError(why)
        # An address subscribed before the API checked it so.
        if (why := delivery.recipient_problem(claim.address)) is not None:
            raise delivery.DeliveryError(f"address: {why}")
        message = notifications.render_email(
            claim.payload,
            mail_from=settings.mail_from,
            mail_to=claim.address,
            message_id=delivery.message_id(f"{claim.event_id}.{claim.destination}", settings.public_url),
        )
        return delivery.send_email(
            smtp_url=settings.smtp_url, timeout_s=settings.route_timeout_s, message=message, resolve=resolve
        )
    elif claim.destination == "webhook":
        if not settings.webhook_url or settings.webhook_secret is None:
            names = f"{env_name('webhook_url')}/{env_name('webhook_secret')}"
            raise delivery.DeliveryError(f"no {names} configured")
        delivery.post_webhook(
            client,
            url=settings.webhook_url,
            secret=settings.webhook_secret.get_secret_value(),
            event=claim.payload,
        )
    elif claim.destination == "email":
        if not settings.smtp_url or not settings.mail_to:
            raise delivery.DeliveryError(f"no {env_name('smtp_url')}/{env_name('mail_to')} configured")
        message = _crm_email(claim.payload)(
            event=claim.payload,
            mail_from=settings.mail_from,
            mail_to=settings.mail_to,
            public_url=settings.public_url,
        )
        return delivery.send_email(
            smtp_url=settings.smtp_url, timeout_s=settings.route_timeout_s, message=message, resolve=resolve
        )
    else:
        raise delivery.DeliveryError(f"unknown destination {claim.destination!r}")


def _crm_email(payload: dict) -> Callable[..., EmailMessage]:
    """The renderer of an outbox event's e-mail to the CRM."""
    if erasure_events.is_erased(payload):
        return erasure_events.render_email
    return delivery.render_closing_email if events.is_closing(payload) else delivery.render_email


def _record_success(
    engine: Engine, claim: Claim, *, at: datetime, settings: Settings, note: str | None = None
) -> None:
    """Mark delivered (whoever claimed it last; `note` kept as its last error), the offer `sent` for its
    main destination, and audit."""
    with session(engine) as sess:
        done = sess.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == claim.id, OUTBOX.c.status == "pending")
            .values(
                status="delivered",
                delivered_at=at,
                last_error=note,
                **erasure_events.after_delivery(claim.payload),
            )
        )
        if done.rowcount != 1:
            return
        erasure_events.record_told(sess, payload=claim.payload, destination=claim.destination, at=at)
        _audit(
            sess,
            claim.offer_id,
            "sent",
            at,
            destination=claim.destination,
            event_id=claim.event_id,
            attempt=claim.attempt,
        )
        if claim.offer_id is not None and _is_main_destination(sess, claim):
            sess.execute(
                update(Offer)
                .where(Offer.id == claim.offer_id, Offer.status == "approved")
                .values(status="sent")
            )
        if claim.offer_id is not None:
            _close_if_gone_meanwhile(sess, claim, at=at, settings=settings)
    log.info("delivered %s → %s (attempt %d)", claim.event_id, claim.destination, claim.attempt)
    if note:
        log.warning("%s → %s delivered, but: %s", claim.event_id, claim.destination, note)


def _close_if_gone_meanwhile(sess: Session, claim: Claim, *, at: datetime, settings: Settings) -> None:
    """An approval that was in flight while its offer was withdrawn or expired: tell the CRM it is closed (by
    each destination that has the offer now, this one included)."""
    if claim.payload.get("type") != events.OFFER_APPROVED:
        return
    offer = sess.get(Offer, claim.offer_id)
    if offer is not None and offer.status in ("withdrawn", "expired"):
        ids_only = not offers.has_offers_grant(sess, offer.customer_id)
        events.enqueue_closing(
            sess,
            offer=offer,
            kind=offer.status,
            settings=settings,
            at=at,
            why="closed while it was sent",
            ids_only=ids_only,
        )


def _is_main_destination(sess: Session, claim: Claim) -> bool:
    """Whether the claim's row is its event's CRM hand-off (`events.crm_hand_off`)."""
    return sess.scalar(select(exists().where(OutboxMessage.id == claim.id, events.crm_hand_off())))


def _hold(engine: Engine, claim: Claim, *, at: datetime, settings: Settings, holds: Holds) -> None:
    """The CRM webhook answered 410 Gone: give the row its attempt back, due as it was, with the reason;
    claim no more rows for it a while, and say so once (not again while it stays gone)."""
    why = (
        "held: the CRM webhook answered HTTP 410 Gone, its endpoint is removed; sent once "
        f"{env_name('webhook_url')} names the CRM's current endpoint (restart the router)"
    )
    with session(engine) as sess:
        fenced = sess.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == claim.id, OUTBOX.c.status == "pending", OUTBOX.c.attempts == claim.attempt)
            .values(attempts=claim.attempt - 1, next_attempt_at=at, last_error=why)
        )
        if fenced.rowcount == 1:
            _audit(sess, claim.offer_id, "delivery_held", at, destination=claim.destination, reason=why)
    if claim.destination not in holds.until:
        log.error(
            "the CRM webhook (%s) answered 410 Gone: its endpoint is removed. Offers are held, not sent "
            "and not dead-lettered, until %s names the CRM's current endpoint and the router is restarted "
            "(the old one is asked again every %g s)",
            env_name("webhook_url"),
            env_name("webhook_url"),
            settings.route_backoff_max_s,
        )
    holds.until[claim.destination] = at + timedelta(seconds=settings.route_backoff_max_s)


def _record_failure(
    engine: Engine,
    claim: Claim,
    *,
    error: str,
    dead: bool,
    at: datetime,
    now: datetime | None,
    settings: Settings,
    rng: random.Random | None,
    asked_s: float | None = None,
) -> None:
    """Schedule the retry, not before the receiver `asked_s` (its Retry-After) up to the longest backoff, or
    dead-letter (`dead`); ignored if another router re-claimed."""
    done_at = now or utcnow()
    delay = None
    if dead:
        values: dict = {"status": "dead", "last_error": error}
        retry_at = None
    else:
        delay = backoff_delay(
            claim.attempt, base_s=settings.route_backoff_base_s, max_s=settings.route_backoff_max_s, rng=rng
        )
        delay = max(delay, min(asked_s or 0.0, settings.route_backoff_max_s))
        retry_at = done_at + timedelta(seconds=delay)
        values = {"next_attempt_at": retry_at, "last_error": error}
    with session(engine) as sess:
        fenced = sess.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == claim.id, OUTBOX.c.status == "pending", OUTBOX.c.attempts == claim.attempt)
            .values(**values)
        )
        if fenced.rowcount != 1:
            return
        _audit(
            sess,
            claim.offer_id,
            "delivery_failed",
            at,
            destination=claim.destination,
            event_id=claim.event_id,
            attempt=claim.attempt,
            error=error,
            retry_at=retry_at.isoformat() if retry_at else None,
            delay_s=delay,
            dead=dead,
        )
    if dead:
        log.error(
            "dead letter: %s → %s after %d attempt(s): %s",
            claim.event_id,
            claim.destination,
            claim.attempt,
            error,
        )
    else:
        log.warning(
            "attempt %d of %s → %s failed (%s); retry at %s",
            claim.attempt,
            claim.event_id,
            claim.destination,
            error,
            retry_at.isoformat(),
        )


def _audit(sess: Session, offer_id: int | None, action: str, at: datetime, **data: object) -> None:
    if offer_id is not None:
        audit.log_event(sess, "offer", offer_id, action, None, data, at=at)
