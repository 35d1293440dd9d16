"""Account-manager offers: list, read, approve (with edits), reject, record the outcome."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from sqlalchemy import select

from api import events, offers, schemas
from api.deps import OfferReader, OfferWriter, ReaderDep, ReadRoute, SessionDep, SettingsDep
from api.routers import columns
from api.scope import get_visible, restrict
from fleet.tables import Offer, utcnow

router = APIRouter(prefix="/offers", tags=["offers"], route_class=ReadRoute)
Status = Literal["proposed", "approved", "rejected", "sent", "accepted", "declined", "withdrawn", "expired"]


_O = Offer.__table__  # Core columns: the ORM's per-row machinery costs more than the query
OFFER_COLUMNS = columns(schemas.OfferOut, _O)


# Every route that queries is a plain `def`: FastAPI runs it in its thread pool, off the event loop.
@router.get("", response_model=list[schemas.OfferOut])
def list_offers(
    sess: ReaderDep,
    who: OfferReader,
    status: Status | None = None,
    customer_id: schemas.CustomerFilter = None,
    limit: schemas.Limit = 100,
    offset: schemas.Offset = 0,
):
    """Offers the caller may see, newest first."""
    query = restrict(select(*OFFER_COLUMNS), _O.c.customer_id, who)
    if who.role == "customer":
        query = query.where(_O.c.status.in_(offers.CUSTOMER_VISIBLE))
    if status:
        query = query.where(_O.c.status == status)
    if customer_id is not None:
        query = query.where(_O.c.customer_id == customer_id)
    query = query.order_by(_O.c.id.desc()).limit(limit).offset(offset)
    return [row._asdict() for row in sess.execute(query)]


@router.get("/{offer_id}", response_model=schemas.OfferOut)
def get_offer(offer_id: schemas.OfferId, sess: ReaderDep, who: OfferReader):
    """One offer with its reason, price and value."""
    return offers.get_visible_offer(sess, offer_id, who)


@router.post("/{offer_id}/approve", response_model=schemas.ApprovalOut)
def approve(
    offer_id: schemas.OfferId,
    body: schemas.ApproveIn,
    sess: SessionDep,
    who: OfferWriter,
    settings: SettingsDep,
):
    """Approve (optionally editing price, title, reason); the CRM hand-over is queued in the same commit.

    409 when the consent is gone or the contact budget is used up (the offer then stays proposed). Approved
    even when this process has no CRM destination configured; `warning` then says it is never sent.
    """
    offer = get_visible(sess, Offer, offer_id, who, "offer")
    approved = offers.approve(
        sess,
        offer,
        by=who,
        now=utcnow(),
        settings=settings,
        price=body.price,
        title=body.title,
        reason=body.reason,
    )
    return schemas.ApprovalOut.model_validate(approved).model_copy(
        update={"warning": events.unsent(settings)}
    )


@router.post("/{offer_id}/reject", response_model=schemas.OfferOut)
def reject(offer_id: schemas.OfferId, body: schemas.RejectIn, sess: SessionDep, who: OfferWriter):
    """Reject with a reason."""
    offer = get_visible(sess, Offer, offer_id, who, "offer")
    return offers.reject(sess, offer, by=who, now=utcnow(), reason=body.reason)


@router.post("/{offer_id}/outcome", response_model=schemas.OfferOut)
def outcome(offer_id: schemas.OfferId, body: schemas.OutcomeIn, sess: SessionDep, who: OfferWriter):
    """Record whether the customer accepted, and the revenue."""
    offer = get_visible(sess, Offer, offer_id, who, "offer")
    return offers.record_outcome(
        sess, offer, by=who, now=utcnow(), accepted=body.accepted, revenue=body.revenue
    )
