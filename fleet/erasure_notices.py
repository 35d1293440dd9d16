"""Which erasures the CRM must be told of (GDPR Art. 19): the customer's offer events were queued for it.

The notice is written in the erasure's transaction, so an erasure that commits always leaves it behind, and
one that does not leaves none; the router (`api.erasure_events`) turns it into the CRM event. The event's
outbox rows keep the account's ids only while they can still be sent: a delivered row forgets them at once,
a dead-lettered one `KEEP_DEAD_DAYS` after its last attempt (`drop_dead`, run by retention).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from fleet import audit
from fleet.tables import ErasureNotice, ErasureReceipt, OutboxMessage, WorkflowEvent

log = logging.getLogger(__name__)

# The outbox destinations of the CRM: its webhook and its e-mail address, the recipients of the offer events.
CRM_DESTINATIONS = ("webhook", "email")
CUSTOMER_ERASED = "com.servicecast.customer.erased"
EVENT_PREFIX = "erasure-"
# How long a dead-lettered announcement keeps the account's ids: time for an operator to fix the CRM and set
# the row pending again (docs/routing.md); then the CRM can no longer be told by this row.
KEEP_DEAD_DAYS = 30
OUTBOX = OutboxMessage.__table__


def crm_knows(conn: Connection, customer_id: int) -> bool:
    """Whether an offer event of the customer was ever queued for the CRM, by webhook or e-mail (delivered or
    not): read before the customer's rows go, since its outbox rows go with them."""
    queued = select(OutboxMessage.id).where(
        OutboxMessage.customer_id == customer_id,
        OutboxMessage.offer_id.is_not(None),
        OutboxMessage.destination.in_(CRM_DESTINATIONS),
    )
    return conn.scalar(queued.limit(1)) is not None


def record(conn: Connection, *, receipt_id: int, customer_id: int, tenant: str, at: datetime) -> None:
    """Note that the erasure on receipt `receipt_id` is to be announced to the CRM."""
    values = {"receipt_id": receipt_id, "customer_id": customer_id, "tenant": tenant, "at": at}
    conn.execute(insert(ErasureNotice).values(**values))


def event_id(receipt_id: int) -> str:
    """The announcement's event id (also `webhook-id`): one per erasure receipt."""
    return f"{EVENT_PREFIX}{receipt_id}"


def forgotten(payload: dict) -> dict:
    """What an announcement's outbox row keeps once it no longer goes: the event's id, type and time."""
    return {key: payload[key] for key in ("id", "type", "time")}


def audit_entry(conn: Connection, action: str, *, event: str, destination: str, at: datetime) -> dict:
    """The audit line of what became of an announcement: the erasure by its pseudonym, never the account's
    ids (the event id names the receipt)."""
    receipt_id = int(event.removeprefix(EVENT_PREFIX))
    pseudonym = conn.scalar(select(ErasureReceipt.pseudonym).where(ErasureReceipt.id == receipt_id))
    data = {"pseudonym": pseudonym, "destination": destination, "event_id": event}
    return audit.entry("customer", None, action, None, data, at)


def drop_dead(conn: Connection, *, before: datetime, at: datetime, dry_run: bool) -> int:
    """Forget the account's ids in announcements dead-lettered with their last attempt before `before`, each
    with an audit line and a warning; returns how many (`dry_run`: only counts)."""
    dead = conn.execute(
        select(
            OUTBOX.c.id, OUTBOX.c.event_id, OUTBOX.c.destination, OUTBOX.c.payload, OUTBOX.c.last_error
        ).where(
            OUTBOX.c.event_type == CUSTOMER_ERASED,
            OUTBOX.c.status == "dead",
            OUTBOX.c.next_attempt_at < before,  # a claim's lease end: just after the last attempt
        )
    ).all()
    dead = [row for row in dead if row.payload != forgotten(row.payload)]
    if dry_run:
        return len(dead)
    for row in dead:
        why = (
            f"the account's ids dropped {KEEP_DEAD_DAYS} days after the last attempt, cannot be retried: the "
            f"CRM was not told of this erasure; last error: {row.last_error}"
        )
        conn.execute(
            update(OUTBOX).where(OUTBOX.c.id == row.id).values(payload=forgotten(row.payload), last_error=why)
        )
        line = audit_entry(
            conn, "erasure_announcement_dropped", event=row.event_id, destination=row.destination, at=at
        )
        conn.execute(WorkflowEvent.__table__.insert().values(**line))
        log.warning("dead-lettered %s %s → %s: %s", CUSTOMER_ERASED, row.event_id, row.destination, why)
    return len(dead)
