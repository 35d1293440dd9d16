"""The `customer.erased` event: the CRM, which received the customer's offer events, is told of its erasure.

`fleet.erasure` leaves a notice for each CRM destination (webhook, e-mail) the erased customer's offer events
were queued for; each router pass turns the notices of the destinations it has into outbox rows (one
transaction: a notice goes as its row comes, so an erasure is announced once per destination), delivered,
signed and retried like the offer events; the e-mail goes to SERVICECAST_MAIL_TO. The event carries the ids
the CRM already has of the account (from `account` in the offer events) and the erasure's time; once
delivered, the row keeps neither, and the audit trail records that the CRM was told, by the erasure's
pseudonym.
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from api import delivery, events
from fleet import erasure_notices
from fleet.db import session
from fleet.erasure_notices import CUSTOMER_ERASED, event_id
from fleet.settings import Settings, env_name
from fleet.tables import ErasureNotice, WorkflowEvent, utcnow

NOTICE = ErasureNotice.__table__
# What enables a CRM destination (`events.destinations`).
SETTING = {"webhook": env_name("webhook_url"), "email": f"{env_name('smtp_url')} and {env_name('mail_to')}"}
log = logging.getLogger(__name__)


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
    """Turn the erasure notices of the CRM destinations configured (webhook, e-mail) into outbox rows; returns
    how many. A notice for another destination waits for a router that has it (`erasure_notices.drop_dead`
    bounds the wait)."""
    mine = NOTICE.c.destination.in_(events.destinations(settings))
    with session(engine) as sess:
        if sess.scalar(select(NOTICE.c.id).where(mine).limit(1)) is None:
            return 0  # the usual pass: no write lock taken
    with session(engine) as sess:
        # DELETE … RETURNING first: it takes SQLite's write lock up front, and a router running at the same
        # time gets none of these notices.
        taken = sess.execute(
            delete(NOTICE)
            .where(mine)
            .returning(
                NOTICE.c.receipt_id, NOTICE.c.destination, NOTICE.c.customer_id, NOTICE.c.tenant, NOTICE.c.at
            )
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
            sess.add(events.outbox_row(event, notice.destination, customer_id=None, offer_id=None, at=now))
    return len(taken)


def warn_waiting(engine: Engine, settings: Settings) -> None:
    """One warning per CRM destination this router lacks that erasure announcements wait for: configured
    within `erasure_notices.KEEP_DEAD_DAYS` of the erasure, it is told; later, retention drops them."""
    lacking = NOTICE.c.destination.not_in(events.destinations(settings))
    with session(engine) as sess:
        waiting = sess.execute(
            select(NOTICE.c.destination, func.count(), func.min(NOTICE.c.at))
            .where(lacking)
            .group_by(NOTICE.c.destination)
        ).all()
    for destination, count, since in waiting:
        log.warning(
            "%d erasure announcement(s) wait for the CRM's %s, which this router does not have (%s); "
            "unless it is configured within %d days of the erasure (the oldest: %s), they are dropped unsent",
            count,
            destination,
            SETTING[destination],
            erasure_notices.KEEP_DEAD_DAYS,
            events.rfc3339(since),
        )


def is_erased(payload: dict) -> bool:
    """Whether an outbox row's payload is a `customer.erased` event."""
    return payload.get("type") == CUSTOMER_ERASED


def after_delivery(payload: dict) -> dict:
    """The outbox values that forget a delivered `customer.erased` event's account ids; {} for others."""
    if not is_erased(payload):
        return {}
    return {"payload": erasure_notices.forgotten(payload)}


def record_told(sess: Session, *, payload: dict, destination: str, at: datetime) -> None:
    """Add the audit line that the CRM was told of the erasure (by its pseudonym), for a delivered
    `customer.erased` event; nothing for others."""
    if not is_erased(payload):
        return
    line = erasure_notices.audit_entry(
        sess.connection(), "erasure_announced", event=payload["id"], destination=destination, at=at
    )
    sess.execute(WorkflowEvent.__table__.insert().values(**line))


def render_email(*, event: dict, mail_from: str, mail_to: str, public_url: str) -> EmailMessage:
    """The announcement for a CRM that takes offers by e-mail: the account's ids only, the event attached."""
    account = event["data"]["account"]
    who = f"customer id {account['customer_id']} (tenant {account['tenant']})"
    text = [
        f"servicecast erased the data of the customer with {who} at {event['data']['erased_at']}.",
        "servicecast sent service offers for this account to your CRM: erase what it holds of the account",
        "too (GDPR Art. 19).",
    ]
    subject = f"Customer erased: account {account['customer_id']} ({account['tenant']})"
    return delivery.event_email(
        event=event, subject=subject, lines=text, mail_from=mail_from, mail_to=mail_to, public_url=public_url
    )
