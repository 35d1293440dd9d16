"""Which erasures the CRM must be told of (GDPR Art. 19), and where: each destination (webhook, e-mail) the
customer's offer events were queued for; a destination that never had the customer does not learn of it.

The notices are written in the erasure's transaction, so an erasure that commits always leaves them behind,
and one that does not leaves none; a router with the destination (`api.erasure_events`) turns each into the
CRM event. The account's ids are kept only while the CRM can still be told: a notice no router with its
destination took within `KEEP_DEAD_DAYS` of the erasure is dropped (`drop_dead`, run by retention); the
event's outbox row forgets them once delivered, or `KEEP_DEAD_DAYS` after its last attempt when dead-lettered,
its last error with them (a CRM's answer may quote the event).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection, Select, delete, insert, select, update

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
NOTICE = ErasureNotice.__table__
DEAD_WHY = f"dead-lettered and not retried within {KEEP_DEAD_DAYS} days"


def crm_destinations(conn: Connection, customer_id: int) -> list[str]:
    """The CRM destinations an offer event of the customer was ever queued for (delivered or not): read before
    the customer's rows go, since its outbox rows go with them."""
    queued = select(OutboxMessage.destination).where(
        OutboxMessage.customer_id == customer_id,
        OutboxMessage.offer_id.is_not(None),
        OutboxMessage.destination.in_(CRM_DESTINATIONS),
    )
    return sorted(set(conn.scalars(queued.distinct())))


def record(
    conn: Connection, *, receipt_id: int, customer_id: int, tenant: str, at: datetime, destinations: list[str]
) -> None:
    """Note that the erasure on receipt `receipt_id` is to be announced at each of `destinations`."""
    values = {"receipt_id": receipt_id, "customer_id": customer_id, "tenant": tenant, "at": at}
    for destination in destinations:
        conn.execute(insert(ErasureNotice).values(**values, destination=destination))


def event_id(receipt_id: int) -> str:
    """The announcement's event id (also `webhook-id`): one per erasure receipt."""
    return f"{EVENT_PREFIX}{receipt_id}"


def forgotten(payload: dict) -> dict:
    """What an announcement's outbox row keeps once it no longer goes: the event's id, type and time."""
    return {key: payload[key] for key in ("id", "type", "time")}


def audit_entry(
    conn: Connection, action: str, *, event: str, destination: str, at: datetime, why: str | None = None
) -> dict:
    """The audit line of what became of an announcement: the erasure by its pseudonym, never the account's
    ids (the event id names the receipt)."""
    receipt_id = int(event.removeprefix(EVENT_PREFIX))
    pseudonym = conn.scalar(select(ErasureReceipt.pseudonym).where(ErasureReceipt.id == receipt_id))
    data = {"pseudonym": pseudonym, "destination": destination, "event_id": event}
    return audit.entry("customer", None, action, None, data | ({"why": why} if why else {}), at)


def drop_dead(conn: Connection, *, before: datetime, at: datetime, dry_run: bool) -> int:
    """Forget the account's ids of the announcements that could not go by `before`: dead-lettered with their
    last attempt before it (the row stays, without the ids and its last error), or waiting since an erasure
    before it for a router with their destination (the notice goes); each with an audit line and a warning.
    Returns how many (`dry_run`: only counts).

    Unless dry, the rows are read locked (PostgreSQL; SQLite's write lock holds them all): a retention run at
    the same time, or a router taking a notice, commits first, and this one then reads the payload that run
    left, or no notice, instead of dropping it again with a second audit line."""
    dead = conn.execute(
        _locked(
            select(OUTBOX.c.id, OUTBOX.c.event_id, OUTBOX.c.destination, OUTBOX.c.payload).where(
                OUTBOX.c.event_type == CUSTOMER_ERASED,
                OUTBOX.c.status == "dead",
                OUTBOX.c.next_attempt_at < before,  # a claim's lease end: just after the last attempt
            ),
            dry_run,
        )
    ).all()
    dead = [row for row in dead if row.payload != forgotten(row.payload)]
    waiting = conn.execute(
        _locked(
            select(NOTICE.c.id, NOTICE.c.receipt_id, NOTICE.c.destination).where(NOTICE.c.at < before),
            dry_run,
        )
    ).all()
    if dry_run:
        return len(dead) + len(waiting)
    for row in dead:
        # The last error goes too: a CRM answering with the body it refused quotes the account's ids.
        why = (
            f"the account's ids and the last error dropped {KEEP_DEAD_DAYS} days after the last attempt: "
            "cannot be retried, the CRM was not told of this erasure"
        )
        conn.execute(
            update(OUTBOX).where(OUTBOX.c.id == row.id).values(payload=forgotten(row.payload), last_error=why)
        )
        _dropped(conn, event=row.event_id, destination=row.destination, at=at, why=DEAD_WHY)
    for notice in waiting:
        conn.execute(delete(NOTICE).where(NOTICE.c.id == notice.id))
        why = f"no router with this destination within {KEEP_DEAD_DAYS} days of the erasure"
        _dropped(conn, event=event_id(notice.receipt_id), destination=notice.destination, at=at, why=why)
    return len(dead) + len(waiting)


def _locked(query: Select, dry_run: bool) -> Select:
    return query if dry_run else query.with_for_update()


def _dropped(conn: Connection, *, event: str, destination: str, at: datetime, why: str) -> None:
    """The audit line and the warning of an announcement dropped unsent."""
    line = audit_entry(
        conn, "erasure_announcement_dropped", event=event, destination=destination, at=at, why=why
    )
    conn.execute(WorkflowEvent.__table__.insert().values(**line))
    log.warning(
        "%s %s → %s dropped, the CRM was not told of this erasure: %s",
        CUSTOMER_ERASED,
        event,
        destination,
        why,
    )
