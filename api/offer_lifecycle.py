"""Offers follow the machine and the clock: withdrawn when the need is gone, expired when unanswered.

The CRM hears of a closed offer only if it already has it (`events.enqueue_closing`); after consent to
offers was revoked that event carries ids only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import events
from api.audit import log_event
from api.offer_book import OPEN, OfferBook
from fleet import display, registry
from fleet.settings import Settings
from fleet.tables import Alert, Offer, Prediction

UNSENT = ("proposed", "approved")
NO_FAULT_FOUND = (Alert.status == "resolved") & (Alert.finding == "no_fault_found")
NO_FAULT_WHY = "the technician found no fault"
UNGRANTED_WHY = "the customer no longer grants 'offers'"


def past_expiry(now: datetime):  # noqa: ANN201
    """Offers whose expiry time has come by `now`."""
    return Offer.expires_at <= now


def withdraw(
    sess: Session, offer: Offer, *, why: str, now: datetime, settings: Settings, ids_only: bool = False
) -> None:
    """Withdraw an open offer and, if the CRM has it, queue the `withdrawn` event."""
    offer.status = "withdrawn"
    log_event(sess, "offer", offer.id, "withdrawn", None, {"why": why}, at=now)
    events.enqueue_closing(
        sess, offer=offer, kind="withdrawn", settings=settings, at=now, why=why, ids_only=ids_only
    )


def withdraw_for_customer(
    sess: Session, customer_id: int, *, why: str, now: datetime, settings: Settings, ids_only: bool
) -> int:
    """Withdraw every open offer of a customer (e.g. consent revoked); returns how many."""
    query = select(Offer).where(Offer.customer_id == customer_id, Offer.status.in_(OPEN)).order_by(Offer.id)
    # A policy batch that locked some of them (`OfferBook`) may propose more before it commits: wait for
    # it (PostgreSQL), then read them again, so that its new ones are withdrawn too.
    sess.execute(query.with_for_update()).all()
    pending = sess.scalars(query).all()
    for offer in pending:
        withdraw(sess, offer, why=why, now=now, settings=settings, ids_only=ids_only)
    return len(pending)


def follow_prediction(
    sess: Session,
    prediction: Prediction,
    *,
    threshold: float,
    now: datetime,
    settings: Settings,
    book: OfferBook | None = None,
) -> int:
    """Withdraw the machine's unsent offers once its risk fell below the alert threshold; returns how many.

    `book`: the run's open offers (`OfferBook`), else the machine's are read now.
    """
    if prediction.status != "ok" or prediction.risk is None or prediction.risk >= threshold:
        return 0
    book = book or OfferBook(sess, [prediction.machine_id])
    unsent = book.open_offers(prediction.machine_id, UNSENT)
    risk, bound = display.percent(prediction.risk), display.percent(threshold)
    why = f"risk fell to {risk}, below the alert threshold of {bound}"
    for offer in unsent:
        withdraw(sess, offer, why=why, now=now, settings=settings)
    return len(unsent)


def sweep(sess: Session, *, now: datetime, settings: Settings) -> tuple[int, int]:
    """Withdraw unsent offers whose alert was resolved "no fault found" and open offers of customers that no
    longer grant `offers`; expire unanswered ones.

    Returns (withdrawn, expired).
    """
    no_fault = sess.scalars(
        select(Offer).join(Alert, Alert.id == Offer.alert_id).where(Offer.status.in_(UNSENT), NO_FAULT_FOUND)
    ).all()
    for offer in no_fault:
        withdraw(sess, offer, why=NO_FAULT_WHY, now=now, settings=settings)
    # A revocation withdraws the customer's open offers itself; one a policy batch proposed on the grant it
    # read just before the revocation committed is left for this sweep.
    ungranted = sess.scalars(
        select(Offer)
        .where(Offer.status.in_(OPEN), Offer.customer_id.not_in(registry.granting("offers")))
        .order_by(Offer.id)
        .with_for_update()
    ).all()
    for offer in ungranted:
        withdraw(sess, offer, why=UNGRANTED_WHY, now=now, settings=settings, ids_only=True)
    due = sess.scalars(select(Offer).where(Offer.status.in_(OPEN), past_expiry(now))).all()
    for offer in due:
        offer.status = "expired"
        offer.outcome_at = now
        log_event(
            sess, "offer", offer.id, "expired", None, {"expires_at": offer.expires_at.isoformat()}, at=now
        )
        events.enqueue_closing(
            sess, offer=offer, kind="expired", settings=settings, at=now, why="no answer in time"
        )
    return len(no_fault) + len(ungranted), len(due)


def closing_reason(sess: Session, offer: Offer, now: datetime) -> str | None:
    """Why the next sweep expires or withdraws this unsent offer, or None: an approval must not race it."""
    if sess.scalar(select(Offer.id).where(Offer.id == offer.id, past_expiry(now))) is not None:
        return f"it expired on {offer.expires_at:%Y-%m-%d %H:%M} UTC"
    alert = select(Alert.id).where(Alert.id == offer.alert_id, NO_FAULT_FOUND)
    if offer.alert_id is not None and sess.scalar(alert) is not None:
        return f"{NO_FAULT_WHY} (alert {offer.alert_id})"
    return None
