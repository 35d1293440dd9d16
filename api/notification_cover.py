"""Who an alert event is for: the live subscriptions that cover it, and their recipients.

The fan-out and the router ask the same question (the router again at send time, for a message whose own
subscription was deleted or stopped since it was queued), so it is answered here once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import auth
from api.alerts import SEVERITY_LEVEL
from api.auth import Principal
from api.offers import risk_scope
from fleet import registry
from fleet.tables import Alert, Machine, NotificationSubscription, User, WorkflowEvent, subscription_address


def recipient(channel: str, address: str) -> tuple[str, str]:
    """Who receives what a subscription sends: an e-mail address regardless of case (mail hosts do not tell
    `Team@OEM.example` from `team@oem.example`), a webhook URL as it is (`subscription_address`)."""
    return channel, subscription_address(channel, address)


def recipient_key(sub: NotificationSubscription) -> str:
    """The subscription's recipient as a queued message records it: a digest, as a webhook URL holds a
    secret."""
    channel, address = recipient(sub.channel, sub.address)
    return hashlib.sha256(f"{channel}\n{address}".encode()).hexdigest()


def live(sess: Session) -> list[NotificationSubscription]:
    """The subscriptions that may send: not disabled, of users not disabled; oldest first."""
    active = select(User.id).where(User.disabled_at.is_(None))
    return list(
        sess.scalars(
            select(NotificationSubscription)
            .where(
                NotificationSubscription.user_id.in_(active), NotificationSubscription.disabled_at.is_(None)
            )
            .order_by(NotificationSubscription.id)
        )
    )


def readers(sess: Session, subs: list[NotificationSubscription]) -> dict[int, Principal]:
    """Each subscriber as the API reads alerts for it now: a notification carries the alert's risk, so it
    goes only to who may read the alert (an account manager: his accounts that grant `offers`)."""
    users = sess.scalars(select(User).where(User.id.in_({s.user_id for s in subs}))).all()
    return {user.id: risk_scope(sess, auth.principal_of_user(sess, user)) for user in users}


def matches(sub: NotificationSubscription, event: WorkflowEvent, alert: Alert, site_id: int | None) -> bool:
    """Whether the subscription covers this alert event (made since it exists; customer, site, severity)."""
    if event.at < sub.created_at:
        return False
    if sub.customer_id is not None and sub.customer_id != alert.customer_id:
        return False
    if sub.site_id is not None and sub.site_id != site_id:
        return False
    return SEVERITY_LEVEL[alert.severity] >= SEVERITY_LEVEL[sub.min_severity]


def covering(
    subs: list[NotificationSubscription],
    event: WorkflowEvent,
    alert: Alert,
    site_id: int | None,
    *,
    readers: dict[int, Principal],
    offers_since: dict[int, datetime],
) -> list[NotificationSubscription]:
    """Of `subs`, those that want this event and whose subscriber may read its alert now; an account manager
    hears of no event from before the customer's `offers` grant in force (a suspension)."""
    return [
        s
        for s in subs
        if readers[s.user_id].sees(alert.customer_id)
        and (readers[s.user_id].role != "account_manager" or event.at >= offers_since[alert.customer_id])
        and matches(s, event, alert, site_id)
    ]


def covering_now(sess: Session, payload: dict) -> list[NotificationSubscription]:
    """The live subscriptions of a queued notification's recipient that cover its event now, oldest first;
    none for a message queued before the recipient was recorded in it."""
    event = sess.get(WorkflowEvent, payload["event"]) if "to" in payload else None
    alert = sess.get(Alert, payload["alert_id"]) if event is not None else None
    if alert is None:
        return []
    same = [s for s in live(sess) if recipient_key(s) == payload["to"]]
    if not same:
        return []
    site_id = sess.scalar(select(Machine.site_id).where(Machine.id == alert.machine_id))
    since = registry.granted_since(sess, "offers")
    return covering(same, event, alert, site_id, readers=readers(sess, same), offers_since=since)
