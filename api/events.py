"""The offer event for the CRM (CloudEvents 1.0, JSON) and the outbox rows that carry it.

An approved offer becomes one outbox row per configured destination, written in the approving
transaction, so the decision and the promise to tell the CRM commit together or not at all. An offer the
CRM has that is closed later becomes one row per destination its approval was delivered to.
`api.routing` then delivers the rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session, aliased

from api import estimate
from fleet.settings import Settings, env_name
from fleet.tables import Customer, Machine, Offer, OutboxMessage, Prediction, utcnow

SPEC_VERSION = "1.0"
OFFER_APPROVED = "com.servicecast.offer.approved"
# An offer the CRM already has was closed on our side: it must stop selling it.
OFFER_CLOSED = {kind: f"com.servicecast.offer.{kind}" for kind in ("rejected", "withdrawn", "expired")}
DATA_SCHEMA_VERSION = 1
NO_DESTINATION = (
    f"No CRM destination is configured ({env_name('webhook_url')}, or {env_name('smtp_url')} with "
    f"{env_name('mail_to')}): nothing was queued for the CRM and this approval is never sent."
)


def crm_hand_off() -> ColumnElement[bool]:
    """Whether an outbox row hands its event to the CRM: the webhook row, or the e-mail when the event has
    no webhook row. Its delivery makes an approved offer `sent`, a contact with the customer."""
    other = aliased(OutboxMessage)
    webhook = exists().where(other.event_id == OutboxMessage.event_id, other.destination == "webhook")
    return (OutboxMessage.destination == "webhook") | ((OutboxMessage.destination == "email") & ~webhook)


def offer_event_id(offer: Offer) -> str:
    """The stable id of an offer's approval event; receivers dedupe by it (it is also `webhook-id`)."""
    return f"offer-{offer.id}-approved"


def destinations(settings: Settings) -> list[str]:
    """The configured destinations: `webhook` when a URL is set, `email` when SMTP and a recipient are."""
    out = []
    if settings.webhook_url:
        out.append("webhook")
    if settings.smtp_url and settings.mail_to:
        out.append("email")
    return out


def unsent(settings: Settings) -> str | None:
    """Why an offer approved with these settings never reaches the CRM (one sentence), or None."""
    return None if destinations(settings) else NO_DESTINATION


def offer_event(
    *,
    offer: Offer,
    customer: Customer,
    machine: Machine,
    public_url: str,
    prediction: Prediction | None = None,
) -> dict:
    """The CloudEvents 1.0 structured-mode event for an approved offer.

    It carries ids, the account, the machine, the prediction's failure mode and risk, the recommended
    service with price and value, the reason and a link to the evidence; never telemetry readings and
    never people's data (no user names or e-mail addresses).
    """
    base = public_url.rstrip("/")
    time = offer.decided_at or utcnow()
    return {
        "specversion": SPEC_VERSION,
        "id": offer_event_id(offer),
        "source": f"{base}/api/v1",
        "type": OFFER_APPROVED,
        "subject": f"offers/{offer.id}",
        "time": rfc3339(time),
        "datacontenttype": "application/json",
        "data": {
            "schema_version": DATA_SCHEMA_VERSION,
            "offer_id": offer.id,
            "prediction_id": offer.prediction_id,
            "alert_id": offer.alert_id,
            "account": {"customer_id": customer.id, "tenant": customer.tenant, "name": customer.name},
            "machine": _machine(machine),
            "failure_mode": offer.failure_mode,
            "risk": round(float(offer.risk), 4),
            "model_version": offer.model_version,
            "recommendation": _recommendation(offer),
            "price": {"amount": float(offer.price), "currency": offer.currency},
            "expected_value": {"amount": float(offer.expected_value), "currency": offer.currency},
            "reason": offer.reason,
            "approved_at": rfc3339(time),
            "evidence_url": f"{base}/api/v1/offers/{offer.id}",
            "time_to_failure": _time_to_failure(prediction, time),
        },
    }


def _machine(machine: Machine) -> dict:
    """The machine as the offer events name it to the CRM."""
    return {
        "machine_id": machine.id,
        "code": machine.code,
        "type": machine.machine_type,
        "serial": machine.serial,
    }


def _recommendation(offer: Offer) -> dict:
    """The service the offer recommends, as the offer events name it."""
    return {"catalog_item": offer.catalog_item, "title": offer.title}


def _time_to_failure(prediction: Prediction | None, at: datetime) -> dict | None:
    """The prediction's estimate as the console shows it: times, band, and the same words."""
    found = estimate.of(prediction)
    if found is None:
        return None
    times = {
        name: None if value is None else rfc3339(value)
        for name, value in (
            ("expected", found.expected),
            ("earliest", found.earliest),
            ("latest", found.latest),
            ("estimated_at", found.made_at),
        )
    }
    return {**times, "text": estimate.words(found, at)}


def crm_destinations(sess: Session, offer: Offer) -> set[str]:
    """The destinations the CRM received this offer by: those its approval was delivered to."""
    delivered = select(OutboxMessage.destination).where(
        OutboxMessage.event_id == offer_event_id(offer), OutboxMessage.status == "delivered"
    )
    return set(sess.scalars(delivered))


def closing_event(
    *, offer: Offer, machine: Machine | None, kind: str, public_url: str, at: datetime, why: str
) -> dict:
    """The CloudEvent that tells the CRM an offer it has is closed; with no `machine`, ids only (after consent
    was revoked)."""
    base = public_url.rstrip("/")
    data: dict = {
        "schema_version": DATA_SCHEMA_VERSION,
        "offer_id": offer.id,
        "customer_id": offer.customer_id,
        "status": kind,
    }
    if machine is not None:
        data |= {
            "machine_id": offer.machine_id,
            "machine": _machine(machine),
            "recommendation": _recommendation(offer),
            "reason": why,
            "evidence_url": f"{base}/api/v1/offers/{offer.id}",
        }
    return {
        "specversion": SPEC_VERSION,
        "id": f"offer-{offer.id}-{kind}",
        "source": f"{base}/api/v1",
        "type": OFFER_CLOSED[kind],
        "subject": f"offers/{offer.id}",
        "time": rfc3339(at),
        "datacontenttype": "application/json",
        "data": data,
    }


def is_closing(event: dict) -> bool:
    """Whether an outbox payload tells the CRM that an offer was closed."""
    return event.get("type") in OFFER_CLOSED.values()


def enqueue_closing(
    sess: Session,
    *,
    offer: Offer,
    kind: str,
    settings: Settings,
    at: datetime,
    why: str,
    ids_only: bool = False,
) -> list[OutboxMessage]:
    """Tell the CRM an offer it has is closed, by each configured destination it received the offer by
    (webhook, e-mail), once per destination; an offer it never got stays unknown to it."""
    told = crm_destinations(sess, offer).intersection(destinations(settings))
    if not told:
        return []
    machine = None if ids_only else sess.get_one(Machine, offer.machine_id)
    event = closing_event(
        offer=offer, machine=machine, kind=kind, public_url=settings.public_url, at=at, why=why
    )
    queued = select(OutboxMessage.destination).where(OutboxMessage.event_id == event["id"])
    rows = [
        outbox_row(event, destination, customer_id=offer.customer_id, offer_id=offer.id, at=at)
        for destination in sorted(told - set(sess.scalars(queued)))
    ]
    sess.add_all(rows)
    return rows


def outbox_row(
    event: dict, destination: str, *, customer_id: int | None, offer_id: int | None, at: datetime
) -> OutboxMessage:
    """A pending outbox row carrying `event` to `destination` (the CRM's or a subscriber's), due at `at`."""
    return OutboxMessage(
        event_id=event["id"],
        event_type=event["type"],
        destination=destination,
        customer_id=customer_id,
        offer_id=offer_id,
        payload=event,
        status="pending",
        attempts=0,
        next_attempt_at=at,
        created_at=at,
    )


def enqueue(
    sess: Session, *, offer: Offer, customer: Customer, machine: Machine, settings: Settings
) -> list[OutboxMessage]:
    """Add one pending outbox row per configured destination to the caller's session; never commits.

    The caller's transaction commits the approval and these rows together (transactional outbox).
    Returns no rows when no destination is configured.
    """
    if offer.id is None:
        sess.flush()
    prediction = sess.get(Prediction, offer.prediction_id) if offer.prediction_id else None
    event = offer_event(
        offer=offer, customer=customer, machine=machine, public_url=settings.public_url, prediction=prediction
    )
    now = utcnow()
    rows = [
        outbox_row(event, destination, customer_id=customer.id, offer_id=offer.id, at=now)
        for destination in destinations(settings)
    ]
    sess.add_all(rows)
    return rows


def rfc3339(value: datetime) -> str:
    """A time as CloudEvents writes it: UTC, milliseconds, `Z`."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
