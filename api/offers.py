"""Account-manager offers: proposed from predictions behind consent and contact gates, then decided."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from api import catalog, catalog_versions, contacts, estimate, events, offer_lifecycle, offer_policy
from api.alerts import AlertBook, lead_time_hours
from api.audit import log_event, require_state
from api.auth import Principal
from api.errors import Conflict, ConsentMissing
from api.offer_book import OPEN, OfferBook
from api.scope import get_visible
from fleet import errors, machine_types, registry
from fleet.audit import Actor
from fleet.settings import Settings, env_name, get_settings
from fleet.tables import UNNAMED_MODE, Alert, Customer, Machine, Offer, Prediction, named_mode, utcnow

LIVE_STATES = OPEN
# A customer sees what was actually sent to it, not the OEM's internal drafts.
CUSTOMER_VISIBLE = ("sent", "accepted", "declined")


def get_visible_offer(sess: Session, offer_id: int, who: Principal) -> Offer:
    """The offer if the caller may see it: within its scope and, for a customer, sent to it; else 404."""
    offer = get_visible(sess, Offer, offer_id, who, "offer")
    if who.role == "customer" and offer.status not in CUSTOMER_VISIBLE:
        raise errors.NotFound(f"offer {offer_id} not found")
    return offer


def has_offers_grant(sess: Session, customer_id: int) -> bool:
    """Whether the customer currently allows its data to be used for sales offers."""
    return "offers" in registry.purposes_of(sess, customer_id)


def risk_scope(sess: Session, who: Principal) -> Principal:
    """The caller as far as predictions and risk go: an account manager's customers that grant `offers`."""
    if who.role != "account_manager":
        return who
    consent = registry.purposes_by_customer(sess, who.customers or ())
    return dataclasses.replace(who, customers=frozenset(c for c, p in consent.items() if "offers" in p))


def hide_risk(machine: dict, scope: Principal) -> dict:
    """A machine row without its latest prediction when `scope` (from `risk_scope`) may not see it."""
    if not scope.sees(machine["customer_id"]):
        machine.update(risk=None, failure_mode=None, predicted_at=None)
    return machine


def blocking_reason(
    sess: Session,
    prediction: Prediction,
    item: catalog.CatalogItem,
    settings: Settings,
    now: datetime,
    *,
    book: OfferBook | None = None,
    contact_book: contacts.ContactBook | None = None,
    alert_book: AlertBook | None = None,
) -> str | None:
    """Why no offer may be made now, or None when every gate is open (`book`: the run's open offers,
    `contact_book`: its customers' contacts, `alert_book`: its machines' open alerts; else read now).

    Consent is read afresh each time: a revocation committed while a run goes on is heeded at once.
    """
    if not has_offers_grant(sess, prediction.customer_id):
        return "consent: the customer has not granted 'offers'"
    if (alert_book or AlertBook(sess)).critical_unassigned(prediction.machine_id):
        return "service first: a critical alert on this machine is not assigned yet"
    over_limit = contact_limit(sess, prediction.customer_id, settings=settings, now=now, book=contact_book)
    if over_limit is not None:
        return over_limit
    duplicate = _live_duplicate(sess, prediction.machine_id, item.key, book)
    if duplicate is not None:
        return f"duplicate: offer {duplicate} for the same machine and need is still live"
    return None


def contact_limit(
    sess: Session,
    customer_id: int,
    *,
    settings: Settings,
    now: datetime,
    book: contacts.ContactBook | None = None,
) -> str | None:
    """Why the contact budget allows no further contact with the customer now, or None while it does.

    Offers sent or about to be (approved, their delivery pending) and technicians' visits in 7 days
    count; proposals do not. Checked when an offer is proposed and again when it is approved. `book`: the
    run's contacts (read at `now`), else the customer's are read now.
    """
    if book is None:
        times = contacts.contact_times(sess, customer_id, now, pending=True)
    else:
        times = book.times(customer_id, pending=True)
    limit = settings.offers_per_account_per_week
    if len(times) < limit:
        return None
    why = (
        f"contact limit: {len(times)} contacts (offers sent or about to be, field visits) with this account"
        f" in 7 days, at most {limit}"
    )
    if limit == 0:
        return why + f"; offers are switched off ({env_name('offers_per_account_per_week')}=0)"
    # The (len - limit + 1)-th oldest contact leaving the 7 days frees a slot; pending ones have no date.
    freeing = times[len(times) - limit]
    if freeing is None:
        return why + "; no slot frees before the offers about to be sent are delivered (then 7 days later)"
    return why + f"; the next frees on {(freeing + timedelta(days=7)):%Y-%m-%d %H:%M} UTC"


def _live_duplicate(sess: Session, machine_id: int, item_key: str, book: OfferBook | None) -> int | None:
    """The oldest live offer of the machine for the item, if any."""
    book = book or OfferBook(sess, [machine_id])
    return next((o.id for o in book.open_offers(machine_id) if o.catalog_item == item_key), None)


def offer_context(
    sess: Session,
    prediction: Prediction,
    machine: Machine,
    customer: Customer,
    now: datetime,
    *,
    book: contacts.ContactBook | None = None,
):
    """What the offer policy may know about this prediction's customer and machine (`book`: the run's
    contacts, read at `now`; else the customer's are read now)."""
    book = book or contacts.ContactBook(sess, [customer.id], now)
    decided = book.decided(customer.id)
    last = book.last(customer.id)
    return offer_policy.Context(
        machine_type=machine.machine_type,
        mode=prediction.failure_mode or UNNAMED_MODE,
        risk=float(prediction.risk),
        lead_hours=lead_time_hours(prediction),
        segment=customer.segment,
        tier=machine.contract_tier,
        month=now.month,
        days_since_contact=None if last is None else (now - last).total_seconds() / 86400,
        offers_before=int(decided[0]),
        accepted_before=int(decided[1]),
        account=customer.id,
        contacts_30d=len(book.times(customer.id, days=contacts.CONTEXT_DAYS)),
    )


def _texts(
    item,
    prediction: Prediction,
    machine: Machine,
    *,
    mode: str | None,
    price: float,
    language: str,
    now,
    cat,
    specs,
):
    """An offer's title and text from its catalog item and the prediction it rests on."""
    return catalog.render(
        item,
        language=language,
        machine=machine.code,
        machine_type=machine.machine_type,
        mode=mode,
        risk=prediction.risk,
        time_to_failure=estimate.of(prediction),
        now=now,
        price=price,
        value=catalog.expected_value(risk=prediction.risk, machine_type=machine.machine_type, catalog=cat),
        catalog=cat,
        specs=specs,
    )


def follow_estimate(
    sess: Session,
    prediction: Prediction,
    now: datetime,
    *,
    book: OfferBook | None = None,
    specs_of: Callable[[str], dict] | None = None,
) -> int:
    """Offers nobody approved yet take the machine's newest estimate; returns how many were updated.

    `book`: the run's open offers (`OfferBook`), `specs_of` its machine types' sensors
    (`machine_types.specs_by_type`); else they are read now.
    """
    if prediction.status != "ok" or prediction.risk is None:
        return 0
    book = book or OfferBook(sess, [prediction.machine_id])
    proposed = [
        offer
        for offer in book.open_offers(prediction.machine_id, ("proposed",))
        if offer.prediction_id is not None and offer.prediction_id != prediction.id
    ]
    if not proposed:
        return 0
    machine = sess.get(Machine, prediction.machine_id)
    specs = (specs_of or machine_types.specs_by_type(sess))(machine.machine_type)
    updated = 0
    for offer in proposed:
        if _rewrite(sess, offer, prediction, machine, now, specs):
            offer.prediction_id, offer.risk = prediction.id, prediction.risk
            updated += 1
    return updated


def _rewrite(
    sess: Session, offer: Offer, prediction: Prediction, machine: Machine, now: datetime, specs: dict
) -> bool:
    """Write the offer's title and text again at its price; False when its catalog item is gone.

    The offer's own catalog version says it, not the one in force: its price and currency stay.
    """
    cat = catalog_versions.of_offer(sess, offer.catalog_version)
    item = cat and cat.item(offer.catalog_item)
    if item is None:  # an item a later catalog version dropped keeps its text
        return False
    offer.title, offer.reason = _texts(
        item,
        prediction,
        machine,
        mode=named_mode(offer.failure_mode),
        price=offer.price,
        language=offer.language,
        now=now,
        cat=cat,
        specs=specs,
    )
    return True


def propose(
    sess: Session,
    prediction: Prediction,
    settings: Settings,
    now: datetime,
    alert: Alert | None = None,
    *,
    policy: offer_policy.OfferPolicy | None = None,
    rng: np.random.Generator | None = None,
    book: OfferBook | None = None,
    contact_book: contacts.ContactBook | None = None,
    in_force: catalog.Catalog | None = None,
    alert_book: AlertBook | None = None,
    specs_of: Callable[[str], dict] | None = None,
) -> Offer | None:
    """An offer for a risky prediction when the catalog has a fitting item and every gate is open.

    `policy` chooses the item and price point among the fitting ones (first fit at list price when None);
    the context, the alternatives and the choice's probability are kept with the offer. A policy that
    holds (no offer) proposes nothing; its choice is kept in the audit trail with the same log. `book`:
    the run's open offers (`OfferBook`), which the new offer joins, `contact_book` its customers' contacts
    (`contacts.ContactBook`), `in_force` the catalog its `policy` was trained for, `alert_book` its machines'
    open alerts (`alerts.AlertBook`, the prediction's applied) and `specs_of` their types' sensors
    (`machine_types.specs_by_type`); else they are read now.
    """
    if prediction.status != "ok" or prediction.risk is None:
        return None
    machine = sess.get(Machine, prediction.machine_id)
    customer = sess.get(Customer, prediction.customer_id)
    lead = lead_time_hours(prediction)
    mode = prediction.failure_mode or None
    cat = in_force or catalog_versions.in_force(sess)
    fits = catalog.eligible(
        mode=mode, risk=prediction.risk, tier=machine.contract_tier, lead_hours=lead, catalog=cat
    )
    if not fits:
        return None
    book = book or OfferBook(sess, [machine.id])
    contact_book = contact_book or contacts.ContactBook(sess, [customer.id], now)
    reason = blocking_reason(
        sess, prediction, fits[0], settings, now, book=book, contact_book=contact_book, alert_book=alert_book
    )
    if reason is not None:
        return None
    fits = [item for item in fits if _live_duplicate(sess, machine.id, item.key, book) is None]
    if not fits:
        return None
    ctx = offer_context(sess, prediction, machine, customer, now, book=contact_book)
    proposal = (policy or offer_policy.FirstFit()).propose(
        ctx, offer_policy.arms_for(fits, customer.segment), rng or np.random.default_rng()
    )
    if proposal.arm == offer_policy.HOLD:
        log = {"policy": proposal.policy, "propensity": proposal.propensity, "context": ctx.as_dict()}
        log["alternatives"] = proposal.logged_alternatives()
        log_event(sess, "machine", machine.id, "offer_held", None, {"prediction_id": prediction.id, **log})
        return None
    arm, item = proposal.arm, cat.item(proposal.arm.item)
    value = catalog.expected_value(risk=prediction.risk, machine_type=machine.machine_type, catalog=cat)
    language = customer.language or "en"
    specs = (specs_of or machine_types.specs_by_type(sess))(machine.machine_type)
    title, text = _texts(
        item,
        prediction,
        machine,
        mode=mode,
        price=arm.price,
        language=language,
        now=now,
        cat=cat,
        specs=specs,
    )
    offer = Offer(
        customer_id=prediction.customer_id,
        machine_id=machine.id,
        prediction_id=prediction.id,
        alert_id=alert.id if alert else None,
        failure_mode=mode or UNNAMED_MODE,
        catalog_item=item.key,
        title=title,
        reason=text,
        price=arm.price,
        list_price=arm.list_price,
        price_level=arm.level,
        currency=cat.currency,
        catalog_version=cat.version,
        language=language,
        expected_value=value,
        risk=prediction.risk,
        status="proposed",
        model_version=prediction.model_version,
        created_at=now,
        expires_at=now + timedelta(days=cat.offer_expiry_days),
        policy=proposal.policy,
        propensity=proposal.propensity,
        context=ctx.as_dict(),
        alternatives=proposal.logged_alternatives(),
    )
    sess.add(offer)
    sess.flush()
    book.add(offer)
    log_event(
        sess,
        "offer",
        offer.id,
        "proposed",
        None,
        {
            "catalog_item": item.key,
            "price": arm.price,
            "policy": proposal.policy,
            "propensity": proposal.propensity,
        },
    )
    return offer


def approve(
    sess: Session,
    offer: Offer,
    *,
    by: Principal,
    now: datetime,
    settings: Settings,
    price: float | None = None,
    title: str | None = None,
    reason: str | None = None,
) -> Offer:
    """proposed → approved (optionally edited); the outbox row is written in the same transaction."""
    require_state("offer", offer, ("proposed",), "approve")
    if price is not None and (problem := catalog.money_problem(price, offer.currency)):
        raise errors.InvalidInput(f"cannot approve offer {offer.id} at {price}: {problem}")
    if not has_offers_grant(sess, offer.customer_id):
        raise ConsentMissing("the customer has withdrawn its consent to offers")
    if (closing := offer_lifecycle.closing_reason(sess, offer, now)) is not None:
        raise Conflict(f"cannot approve offer {offer.id}: {closing}")
    # The customer's row locked (PostgreSQL) so concurrent approvals for one account count each other.
    sess.get(Customer, offer.customer_id, with_for_update=True)
    over_limit = contact_limit(sess, offer.customer_id, settings=settings, now=now)
    if over_limit is not None:
        raise Conflict(f"cannot approve offer {offer.id}: {over_limit}")
    edits = {k: v for k, v in {"price": price, "title": title, "reason": reason}.items() if v is not None}
    before = {"price": offer.price, "title": offer.title, "reason": offer.reason}
    machine = sess.get(Machine, offer.machine_id)
    prediction = sess.get(Prediction, offer.prediction_id) if offer.prediction_id else None
    if price is not None and prediction is not None:
        offer.price = price  # the text states the edited price, unless the edit rewrites it too
        _rewrite(
            sess, offer, prediction, machine, now, machine_types.sensor_specs(sess, machine.machine_type)
        )
    for name, value in edits.items():
        setattr(offer, name, value)
    offer.status, offer.decided_by, offer.decided_at = "approved", by.user_id, now
    after = {"price": offer.price, "title": offer.title, "reason": offer.reason}
    log_event(sess, "offer", offer.id, "approved", by, {"edited": sorted(edits)}, before=before, after=after)
    customer = sess.get(Customer, offer.customer_id)
    events.enqueue(sess, offer=offer, customer=customer, machine=machine, settings=settings)
    return offer


def reject(sess: Session, offer: Offer, *, by: Principal, now: datetime, reason: str) -> Offer:
    """proposed → rejected with a reason."""
    require_state("offer", offer, ("proposed",), "reject")
    offer.status, offer.decided_by, offer.decided_at, offer.reject_reason = (
        "rejected",
        by.user_id,
        now,
        reason,
    )
    log_event(sess, "offer", offer.id, "rejected", by, {"reason": reason})
    return offer


def record_outcome(
    sess: Session,
    offer: Offer,
    *,
    by: Principal | None,
    now: datetime,
    accepted: bool,
    revenue: float | None,
    reason: str | None = None,
) -> Offer:
    """approved/sent → accepted (with revenue) or declined (with the reason, if given); `by` None: the CRM.

    An acceptance without a revenue figure earned the approved price: the ledger learns a win, not a 0.
    """
    require_state("offer", offer, ("approved", "sent"), "record the outcome of")
    if revenue is not None and (problem := catalog.finer_than_unit(revenue, offer.currency)):
        raise errors.InvalidInput(f"cannot record the outcome of offer {offer.id}: revenue {problem}")
    offer.status = "accepted" if accepted else "declined"
    earned = offer.price if revenue is None else revenue
    offer.outcome_at, offer.revenue = now, earned if accepted else None
    offer.outcome_reason = reason
    log_event(sess, "offer", offer.id, offer.status, by, {"revenue": offer.revenue, "reason": reason})
    return offer


def revoke_consent(
    sess: Session,
    customer_id: int,
    purpose: str,
    by: Actor,
    *,
    reference: str | None = None,
    settings: Settings | None = None,
) -> int:
    """Revoke a data-use purpose and withdraw the customer's open offers; returns how many.

    The CRM is told of the withdrawn offers it has, by ids only. `service` is refused: without it
    servicecast stops for the customer, which is an erasure.
    """
    if purpose == "service":
        raise ConsentMissing(
            "revoking 'service' stops servicecast for this customer; ask for erasure instead"
        )
    registry.revoke_purpose(sess, customer_id=customer_id, purpose=purpose, by=by, reference=reference)
    if purpose != "offers":
        return 0
    return offer_lifecycle.withdraw_for_customer(
        sess,
        customer_id,
        why=f"{purpose} consent revoked by {by.name}",
        now=utcnow(),
        settings=settings or get_settings(),
        ids_only=True,
    )
