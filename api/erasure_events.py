"""The `customer.erased` event: the CRM, which received the customer's offer events, is told of its erasure.

`fleet.erasure` leaves a notice when the erased customer's offer events were queued for the CRM webhook;
each router pass turns the notices into outbox rows (one transaction: the notice goes as the row comes, so
an erasure is announced once), delivered, signed and retried like the offer events. The event carries the
ids the CRM already has of the account (from `account` in the offer events) and the erasure's time; once
delivered, the row keeps neither.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from api import events
from fleet.db import session
from fleet.erasure_notices import CRM_WEBHOOK
from fleet.settings import Settings
from fleet.tables import ErasureNotice, OutboxMessage, utcnow

CUSTOMER_ERASED = "com.servicecast.customer.erased"
NOTICE = ErasureNotice.__table__


def event_id(receipt_id: int) -> str:
    """The event's id (also `webhook-id`): one per erasure receipt."""
    return f"erasure-{receipt_id}"


def erased_event(*, receipt_id: int, customer_id: int, tenant: str, at: str, public_url: str) -> dict:
    """The CloudEvents 1.0 event: the account's ids as the offer events gave them, and when it was erased."""
    return {
        "specversion": events.SPEC_VERSION,
        "id": event_id(receipt_id),
        "source": f"{public_url.rstrip('/')}/api/v1",
        "type": CUSTOMER_ERASED,
        "subject": f"customers/{customer_id}",
        "time": at,
        "datacontenttype": "application/json",
        "data": {
            "schema_version": events.DATA_SCHEMA_VERSION,
            "account": {"customer_id": customer_id, "tenant": tenant},
            "erased_at": at,
        },
    }


def enqueue_notices(*, engine: Engine, settings: Settings) -> int:
    """Turn the erasure notices into outbox rows for the CRM webhook; returns how many. Without a webhook
    configured the notices wait for a router that has one."""
    if not settings.webhook_url:
        return 0
    with session(engine) as sess:
        if sess.scalar(select(NOTICE.c.id).limit(1)) is None:
            return 0  # the usual pass: no write lock taken
    with session(engine) as sess:
        # DELETE … RETURNING first: it takes SQLite's write lock up front, and a router running at the same
        # time gets none of these notices.
        taken = sess.execute(
            delete(NOTICE).returning(NOTICE.c.receipt_id, NOTICE.c.customer_id, NOTICE.c.tenant, NOTICE.c.at)
        ).all()
        now = utcnow()
        for notice in taken:
            event = erased_event(
                receipt_id=notice.receipt_id,
                customer_id=notice.customer_id,
                tenant=notice.tenant,
                at=events.rfc3339(notice.at),
                public_url=settings.public_url,
            )
            sess.add(
                OutboxMessage(
                    event_id=event["id"],
                    event_type=CUSTOMER_ERASED,
                    destination=CRM_WEBHOOK,
                    customer_id=None,
                    offer_id=None,
                    payload=event,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    return len(taken)


def after_delivery(payload: dict) -> dict:
    """The outbox values that forget a delivered `customer.erased` event's account ids; {} for others."""
    if payload.get("type") != CUSTOMER_ERASED:
        return {}
    return {"payload": {key: payload[key] for key in ("id", "type", "time")}}
