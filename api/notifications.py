"""Technician notifications: alert events (new critical, escalated, assigned) to the people who subscribe.

Each pass reads the alert events of the audit trail past a watermark and writes one outbox row per
recipient (channel and address) of the matching subscriptions, keyed by the event and the oldest such
subscription and recording the recipient, so an event reaches each address once, however many
subscriptions cover it, also when a pass repeats. The router delivers the rows by e-mail or incoming webhook
(Teams/Slack style) with the offers' retries and backoff. A row whose subscription was deleted, disabled or
suspended meanwhile, or whose user was disabled, goes out by the oldest other live subscription of its
recipient that covers the event (its destination rewritten to it), and is cancelled when none does.
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import auth, delivery, egress, estimate, events
from api import notification_cover as cover
from api.auth import Principal
from api.errors import ConsentMissing, Forbidden
from api.offers import risk_scope
from api.scope import get_visible
from fleet import display, errors, machine_types, registry, watermarks
from fleet.redaction import redact_url
from fleet.settings import Settings, env_name
from fleet.tables import (
    Alert,
    Customer,
    Machine,
    NotificationSubscription,
    OutboxMessage,
    Prediction,
    Site,
    User,
    WorkflowEvent,
    named_mode,
    subscription_address,
)

if TYPE_CHECKING:  # api.schemas imports FastAPI: not for `servicecast policy` or `route`, which serve no HTTP
    from api.schemas import EmailSubscriptionIn, WebhookSubscriptionIn

log = logging.getLogger(__name__)
WATERMARK = "notify.alert_events"
# Audit rows of concurrent transactions can commit out of id order: each pass looks back this many ids.
LOOK_BACK = 500
CHANNELS = ("email", "webhook")
PREFIX = "notify-"
NO_SMTP = (
    f"E-mail is not configured ({env_name('smtp_url')} is unset): nothing is sent by e-mail until the admin "
    "sets it."
)
HEADLINE = {
    "opened": "New critical alert",
    "escalated": "Alert escalated",
    "assigned": "Alert assigned",
}


def subscriptions_of(sess: Session, who: Principal) -> list[NotificationSubscription]:
    """The caller's subscriptions, oldest first (an admin sees everyone's)."""
    query = select(NotificationSubscription).order_by(NotificationSubscription.id)
    if who.role != "admin":
        query = query.where(NotificationSubscription.user_id == who.user_id)
    return list(sess.scalars(query))


def subscribe(
    sess: Session, who: Principal, body: EmailSubscriptionIn | WebhookSubscriptionIn, *, settings: Settings
) -> tuple[NotificationSubscription, bool]:
    """Subscribe the caller, and whether a subscription was added: the caller's same subscription in force
    (`recipient`, scope, severity) is answered instead, so a request sent again changes nothing. A customer
    or site must be one the caller may see (a customer: its own) and whose alerts it may read (an account
    manager: an account granting `offers`, as `_readers` sends them), a webhook's address one the router may
    send to (a name is checked when it is sent to)."""
    if body.channel == "webhook":
        if problem := egress.Policy(settings.webhook_allow_networks).literal_problem(body.address):
            raise errors.InvalidInput(f"address: {problem}")
    customer_id = body.customer_id
    if body.site_id is not None:
        site = sess.get(Site, body.site_id)
        if site is None or not who.sees(site.customer_id):
            raise errors.NotFound(f"site {body.site_id} not found")
        if customer_id not in (None, site.customer_id):  # no alert is of both: it would never notify
            raise errors.InvalidInput(f"site_id: site {site.id} is not a site of customer {customer_id}")
        customer_id = site.customer_id
    if customer_id is not None:
        get_visible(sess, Customer, customer_id, who, "customer")
        if not risk_scope(sess, who).sees(customer_id):
            raise ConsentMissing(
                f"customer {customer_id} has not granted 'offers': its alerts carry risk and reach an "
                "account manager only with that grant"
            )
    elif who.customers is not None:
        raise Forbidden("name a customer_id: you see only some customers")
    fields = body.model_dump() | {"customer_id": customer_id}
    fields["address"] = subscription_address(body.channel, body.address)
    if (same := _same(sess, who, fields)) is not None:
        return same, False
    sub = NotificationSubscription(user_id=who.user_id, **fields)
    try:
        with sess.begin_nested():
            sess.add(sub)
    except IntegrityError:
        # A request sent at the same time stored it since `_same` looked: its row holds the unique index.
        if (same := _same(sess, who, fields)) is not None:
            return same, False
        raise
    return sub, True


def _same(sess: Session, who: Principal, fields: dict) -> NotificationSubscription | None:
    """The caller's subscription in force that these fields would make again (as the unique index
    `uq_notification_subscriptions_in_force` compares them), or None."""
    table = NotificationSubscription
    scope = [
        getattr(table, name).is_(None) if fields[name] is None else getattr(table, name) == fields[name]
        for name in ("customer_id", "site_id")
    ]
    return sess.scalars(
        select(table)
        .where(
            table.user_id == who.user_id,
            table.channel == fields["channel"],
            table.address == fields["address"],
            table.min_severity == fields["min_severity"],
            table.disabled_at.is_(None),
            *scope,
        )
        .order_by(table.id)
    ).first()


def unsent(settings: Settings, channel: str) -> str | None:
    """Why notifications by `channel` cannot go out with these settings (one sentence), or None."""
    return NO_SMTP if channel == "email" and not settings.smtp_url else None


def unsubscribe(sess: Session, who: Principal, subscription_id: int) -> NotificationSubscription:
    """Delete one of the caller's subscriptions (an admin: anyone's); the router cancels its pending rows
    unless another live subscription of their address covers them (`sender`)."""
    sub = sess.get(NotificationSubscription, subscription_id)
    if sub is None or (who.role != "admin" and sub.user_id != who.user_id):
        raise errors.NotFound(f"subscription {subscription_id} not found")
    sess.delete(sub)
    sess.flush()
    return sub


def suspended(sess: Session, subs: list[NotificationSubscription]) -> dict[int, str]:
    """Why each subscription naming a customer whose alerts its owner may no longer read sends nothing, by
    id: the customer withdrew `offers`, or is no longer the account manager's. Nothing is stored: it
    resumes, for alert events from then on, as soon as the reason ends."""
    users = sess.scalars(select(User).where(User.id.in_({s.user_id for s in subs}))).all()
    owners = {user.id: auth.principal_of_user(sess, user) for user in users}
    readers = {user_id: risk_scope(sess, who) for user_id, who in owners.items()}
    reasons = {}
    for sub in subs:
        customer = sub.customer_id
        if customer is None or readers[sub.user_id].sees(customer):
            continue
        if not owners[sub.user_id].sees(customer):
            reasons[sub.id] = (
                f"customer {customer} is no longer one of your accounts; notifications resume if it is "
                "assigned to you again"
            )
        else:
            reasons[sub.id] = (
                f"customer {customer} has withdrawn 'offers': its alerts carry risk and reach an account "
                "manager only with that grant; notifications resume when it grants 'offers' again"
            )
    return reasons


def stopped(sess: Session, sub: NotificationSubscription | None) -> str | None:
    """Why a subscription's notification must not go out (deleted, its user disabled, or suspended since
    it was queued), or None."""
    if sub is None:
        return "unsubscribed"
    if sub.disabled_at is not None:
        return f"subscription disabled: {sub.disabled_reason}"
    if sess.scalar(select(User.disabled_at).where(User.id == sub.user_id)) is not None:
        return "subscriber disabled"
    if why := suspended(sess, [sub]).get(sub.id):
        return f"subscription suspended: {why}"
    return None


def sender(
    sess: Session, sub_id: int, *, event_id: str, payload: dict
) -> tuple[NotificationSubscription | None, str | None]:
    """The subscription a queued notification goes out by, or why it does not: its own; or, when that one
    was deleted or stopped since (`stopped`), the oldest other live subscription of its recipient that covers
    the event and has no row of it: unsubscribing one rule does not silence another that wants the alert."""
    sub = sess.get(NotificationSubscription, sub_id)
    if (why := stopped(sess, sub)) is None:
        return sub, None
    taken = set(sess.scalars(select(OutboxMessage.destination).where(OutboxMessage.event_id == event_id)))
    stand_in = next((s for s in cover.covering_now(sess, payload) if destination(s) not in taken), None)
    return (stand_in, None) if stand_in is not None else (sub, why)


def disable_gone(sess: Session, dest: str, *, error: str, at: datetime) -> None:
    """Disable the subscription behind `dest`, whose endpoint answered 410 Gone, saying so to its owner."""
    sub_id = subscription_id(dest)
    sub = sess.get(NotificationSubscription, sub_id) if sub_id is not None else None
    if sub is None or sub.disabled_at is not None:
        return
    sub.disabled_at = at
    sub.disabled_reason = f"the webhook answered {error}"[:500]
    log.warning("notification subscription %d disabled: %s", sub.id, sub.disabled_reason)


def shown_address(sub: NotificationSubscription) -> str:
    """Where a subscription sends, as pages and API answers show it: a webhook URL carries its secret."""
    return redact_url(sub.address) if sub.channel == "webhook" else sub.address


def destination(sub: NotificationSubscription) -> str:
    """The outbox destination of a subscription's rows, e.g. `notify-email:12`."""
    return f"{PREFIX}{sub.channel}:{sub.id}"


def subscription_id(dest: str) -> int | None:
    """The subscription behind an outbox destination, or None for an offer destination."""
    if not dest.startswith(PREFIX):
        return None
    return int(dest.rsplit(":", 1)[1])


def enqueue_due(sess: Session, *, now: datetime, public_url: str) -> int:
    """Queue notifications for alert events past the watermark; returns how many rows were added."""
    mark = watermarks.locked(sess, WATERMARK)
    found = sess.scalars(
        select(WorkflowEvent)
        .where(
            WorkflowEvent.id > mark.value - LOOK_BACK,
            WorkflowEvent.subject == "alert",
            WorkflowEvent.action.in_(tuple(HEADLINE)),
        )
        .order_by(WorkflowEvent.id)
    ).all()
    subs = cover.live(sess)
    readers = cover.readers(sess, subs) if found else {}
    offers_since = registry.granted_since(sess, "offers") if found else {}
    specs_of = machine_types.specs_by_type(sess)  # once per type, not per alert
    added = 0
    for event in found:
        mark.value = max(mark.value, event.id)
        alert = sess.get(Alert, event.subject_id)
        if alert is None or (event.action == "opened" and (event.data or {}).get("severity") != "critical"):
            continue
        machine = sess.get(Machine, alert.machine_id)
        wanted = cover.covering(
            subs, event, alert, machine.site_id, readers=readers, offers_since=offers_since
        )
        if not wanted:
            continue
        event_id = f"alert-{alert.id}-{event.action}-{event.id}"
        queued = sess.execute(
            select(OutboxMessage.destination, OutboxMessage.payload).where(OutboxMessage.event_id == event_id)
        ).all()
        wanted = _one_per_recipient(wanted, queued)
        customer = sess.get(Customer, alert.customer_id)
        specs = specs_of(machine.machine_type)
        prediction = sess.get(Prediction, alert.last_prediction_id) if alert.last_prediction_id else None
        ttf = _time_to_failure(prediction, now)
        payload = _payload(event_id, event, alert, machine, customer, public_url, specs, ttf)
        for sub in wanted:
            row = payload | {"to": cover.recipient_key(sub)}
            sess.add(
                events.outbox_row(row, destination(sub), customer_id=alert.customer_id, offer_id=None, at=now)
            )
            added += 1
    mark.updated_at = now
    return added


def _one_per_recipient(
    wanted: list[NotificationSubscription], queued: list
) -> list[NotificationSubscription]:
    """Of the subscriptions an event matches, the oldest per recipient who has no row of the event queued
    yet (`queued`: its rows' destinations and payloads): overlapping subscriptions to one address send once,
    and a row stays its recipient's when the subscription it was queued by is deleted."""
    dests = {dest for dest, _ in queued}
    done = {payload.get("to") for _, payload in queued}
    # A row queued before rows recorded their recipient stands for its subscription's.
    done |= {cover.recipient_key(s) for s in wanted if destination(s) in dests}
    chosen: dict[str, NotificationSubscription] = {}
    for sub in sorted(wanted, key=lambda s: s.id):
        if (to := cover.recipient_key(sub)) not in done:
            chosen.setdefault(to, sub)
    return list(chosen.values())


def _payload(
    event_id: str,
    event: WorkflowEvent,
    alert: Alert,
    machine: Machine,
    customer: Customer,
    url: str,
    specs,
    ttf: str,
):
    from models import modes  # with pandas, which `servicecast route` and `policy` need not load to start

    link = f"{url.rstrip('/')}/alerts/{alert.id}"
    failure = modes.name(named_mode(alert.failure_mode), specs, in_text=True)  # words for no mode too
    text = (
        f"{HEADLINE[event.action]}: {machine.code} of {customer.name} — {failure}, "
        f"{alert.severity}, risk {display.percent(alert.risk)}{ttf}. {link}"
    )
    return {
        "id": event_id,
        "type": f"com.servicecast.alert.{event.action}",  # the outbox row's event type
        "alert_id": alert.id,
        "event": event.id,
        "action": event.action,
        "text": text,
        "link": link,
    }


def _time_to_failure(prediction: Prediction | None, now: datetime) -> str:
    """The time to failure of the alert's prediction as a clause, in the alert pages' words; '' if none."""
    if prediction is None:
        return ""
    return ", " + estimate.words_of(prediction, now)


def render_email(payload: dict, *, mail_from: str, mail_to: str, message_id: str) -> EmailMessage:
    """The notification as a plain-text e-mail."""
    msg = EmailMessage()
    msg["Subject"] = delivery.one_line(payload["text"].split(" — ", 1)[0])
    msg["From"], msg["To"], msg["Message-ID"] = mail_from, mail_to, message_id
    msg["X-Servicecast-Event-Id"] = payload["id"]
    msg.set_content(payload["text"] + "\n")
    return msg
