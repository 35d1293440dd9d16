"""The outcome ledger: every decided offer with the context, arm and propensity it was proposed with.

The offer policy learns from it, and off-policy estimates are computed from it. The same `Ledger` is
filled from the offers table (`from_offers`) and by the market simulation, so both share one code path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Exists, exists, or_, select
from sqlalchemy.orm import Session

from api.events import OFFER_APPROVED
from api.offer_policy import Arm, Context
from fleet.tables import Offer, OutboxMessage

DECIDED = ("accepted", "declined", "expired")


@dataclass(frozen=True, slots=True)
class Entry:
    """One offer the customer answered (or let expire): what was known, done, and earned."""

    context: Context
    arm: Arm
    propensity: float
    revenue: float
    alternatives: tuple[Arm, ...] = ()


@dataclass
class Ledger:
    """Decided offers in the order their outcomes arrived."""

    entries: list[Entry] = field(default_factory=list)

    def add(self, entry: Entry) -> None:
        """Record one outcome."""
        self.entries.append(entry)

    def rows(self) -> list[tuple[Context, Arm, float]]:
        """(context, arm, revenue) rows, as the policy learns from them."""
        return [(e.context, e.arm, e.revenue) for e in self.entries]

    def revenue(self) -> float:
        """Accepted revenue over every entry."""
        return sum(e.revenue for e in self.entries)


def arm_of(offer: Offer) -> Arm:
    """The action an offer records: its item at its approved price (an edited price is the action)."""
    level = offer.price_level or 0
    return Arm(offer.catalog_item, level, float(offer.price), float(offer.list_price or offer.price))


def delivered() -> Exists:
    """Whether the offer reached the customer: its `offer.approved` message was delivered to the CRM."""
    return exists().where(
        OutboxMessage.offer_id == Offer.id,
        OutboxMessage.event_type == OFFER_APPROVED,
        OutboxMessage.status == "delivered",
    )


def from_offers(sess: Session, *, limit: int = 100_000) -> Ledger:
    """The ledger of decided offers that carry a policy log (context and propensity).

    An expired offer counts only if the customer had it (its approval was delivered): one that expired
    before anyone sent it says nothing about the customer.
    """
    query = (
        select(Offer)
        .where(
            Offer.status.in_(DECIDED),
            or_(Offer.status != "expired", delivered()),
            Offer.context.is_not(None),
            Offer.propensity.is_not(None),
        )
        .order_by(Offer.outcome_at, Offer.id)
        .limit(limit)
    )
    ledger = Ledger()
    for offer in sess.scalars(query):
        revenue = float(offer.revenue or 0.0) if offer.status == "accepted" else 0.0
        alternatives = tuple(
            Arm(a["item"], a["level"], a["price"], a["list_price"]) for a in offer.alternatives or ()
        )
        ledger.add(
            Entry(Context(**offer.context), arm_of(offer), float(offer.propensity), revenue, alternatives)
        )
    return ledger


def ips_estimate(
    entries: Sequence[Entry], target: Callable[[Context, Sequence[Arm]], np.ndarray]
) -> tuple[float, float]:
    """Inverse-propensity and self-normalised estimates of the target policy's total revenue on these logs.

    `target(context, alternatives)` gives the target policy's probabilities over the logged alternatives.
    """
    weights, rewards = np.zeros(len(entries)), np.zeros(len(entries))
    for i, entry in enumerate(entries):
        probs = target(entry.context, entry.alternatives)
        chosen = next(j for j, a in enumerate(entry.alternatives) if a.key == entry.arm.key)
        weights[i], rewards[i] = probs[chosen] / entry.propensity, entry.revenue
    ips = float((weights * rewards).sum())
    snips = float((weights * rewards).sum() / weights.sum() * len(entries)) if weights.sum() else 0.0
    return ips, snips


def doubly_robust_estimate(
    entries: Sequence[Entry],
    target: Callable[[Context, Sequence[Arm]], np.ndarray],
    model: Callable[[Context, Sequence[Arm]], np.ndarray],
) -> float:
    """Doubly robust estimate of the target policy's total revenue: the reward model's prediction for
    the target's choices, corrected by the propensity-weighted error on the logged choice.

    `model(context, alternatives)` predicts each alternative's revenue; it must not be fitted on `entries`.
    """
    total = 0.0
    for entry in entries:
        probs, predicted = target(entry.context, entry.alternatives), model(entry.context, entry.alternatives)
        chosen = next(j for j, a in enumerate(entry.alternatives) if a.key == entry.arm.key)
        total += float(probs @ predicted) + probs[chosen] / entry.propensity * (
            entry.revenue - predicted[chosen]
        )
    return total
