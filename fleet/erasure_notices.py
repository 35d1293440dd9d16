"""Which erasures the CRM must be told of (GDPR Art. 19): the customer's offer events were queued for it.

The notice is written in the erasure's transaction, so an erasure that commits always leaves it behind, and
one that does not leaves none; the router (`api.erasure_events`) turns it into the CRM event.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from fleet import audit
from fleet.tables import ErasureNotice, ErasureReceipt, OutboxMessage

# The outbox destinations of the CRM: its webhook and its e-mail address, the recipients of the offer events.
CRM_DESTINATIONS = ("webhook", "email")
CUSTOMER_ERASED = "com.servicecast.customer.erased"
EVENT_PREFIX = "erasure-"


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
    """What an announcement's outbox row keeps once delivered: the event's id, type and time."""
    return {key: payload[key] for key in ("id", "type", "time")}


def audit_entry(conn: Connection, action: str, *, event: str, destination: str, at: datetime) -> dict:
    """The audit line of what became of an announcement: the erasure by its pseudonym, never the account's
    ids (the event id names the receipt)."""
    receipt_id = int(event.removeprefix(EVENT_PREFIX))
    pseudonym = conn.scalar(select(ErasureReceipt.pseudonym).where(ErasureReceipt.id == receipt_id))
    data = {"pseudonym": pseudonym, "destination": destination, "event_id": event}
    return audit.entry("customer", None, action, None, data, at)
