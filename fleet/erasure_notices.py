"""Which erasures the CRM must be told of (GDPR Art. 19): the customer's offer events were queued for it.

The notice is written in the erasure's transaction, so an erasure that commits always leaves it behind, and
one that does not leaves none; the router (`api.erasure_events`) turns it into the CRM event.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from fleet.tables import ErasureNotice, OutboxMessage

# The outbox destination of the CRM's webhook: the recipient of the offer events and of their closing.
CRM_WEBHOOK = "webhook"


def crm_knows(conn: Connection, customer_id: int) -> bool:
    """Whether an offer event of the customer was ever queued for the CRM webhook (delivered or not): read
    before the customer's rows go, since its outbox rows go with them."""
    queued = select(OutboxMessage.id).where(
        OutboxMessage.customer_id == customer_id,
        OutboxMessage.offer_id.is_not(None),
        OutboxMessage.destination == CRM_WEBHOOK,
    )
    return conn.scalar(queued.limit(1)) is not None


def record(conn: Connection, *, receipt_id: int, customer_id: int, tenant: str, at: datetime) -> None:
    """Note that the erasure on receipt `receipt_id` is to be announced to the CRM."""
    values = {"receipt_id": receipt_id, "customer_id": customer_id, "tenant": tenant, "at": at}
    conn.execute(insert(ErasureNotice).values(**values))
