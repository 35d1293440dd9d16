"""Whether a subscription's notifications get through: its newest one that failed and was neither delivered
nor cancelled since, as its owner reads it in the API and on the Notifications page.

The router retries a notification up to `SERVICECAST_ROUTE_MAX_ATTEMPTS` times, then dead-letters it; without
this only the router's log said so, and a subscriber whose webhook answered 500 for days heard nothing.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import notifications
from fleet.tables import NotificationSubscription, OutboxMessage


def problems(sess: Session, subs: list[NotificationSubscription], *, max_attempts: int) -> dict[int, str]:
    """What went wrong with each subscription's newest notification that went out or was tried, by id: given
    up (dead-lettered) or being retried; none once a later one is delivered."""
    by_dest = {notifications.destination(sub): sub.id for sub in subs}
    if not by_dest:
        return {}
    newest = (
        select(func.max(OutboxMessage.id))
        .where(
            OutboxMessage.destination.in_(by_dest),
            OutboxMessage.status != "cancelled",
            (OutboxMessage.status != "pending") | OutboxMessage.last_error.is_not(None),
        )
        .group_by(OutboxMessage.destination)
    )
    rows = sess.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(newest))).all()
    return {by_dest[row.destination]: said for row in rows if (said := _said(row, max_attempts))}


def _said(row: OutboxMessage, max_attempts: int) -> str | None:
    what = (
        f"the notification of alert {row.payload.get('alert_id')} ({row.payload.get('action')}), "
        f"queued {row.created_at:%Y-%m-%d %H:%M} UTC"
    )
    if row.status == "dead":
        tries = "attempt" if row.attempts == 1 else "attempts"
        return f"not delivered: {what}, was given up after {row.attempts} {tries}: {row.last_error}"
    if row.status == "pending":
        failed = f"{row.attempts} of at most {max_attempts} attempts failed so far"
        return f"retrying {what}: {failed}: {row.last_error}"
    return None
