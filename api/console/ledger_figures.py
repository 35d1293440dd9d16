"""The ledger's figures per account and month: alerts and findings, offers and outcomes, money."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import catalog
from api.offer_ledger import delivered
from fleet.tables import Alert, Machine, Offer

# A fault found on site before the machine failed: the alert was right and the failure did not happen.
CAUGHT = ("confirmed_fault", "replaced_before_failure")
NO_FAULT = "no_fault_found"


@dataclass
class Figures:
    """What one account (or several) did in a period; see ledger.html for each figure's definition."""

    alerts: int = 0
    confirmed: int = 0
    no_fault: int = 0
    proposed: int = 0
    approved: int = 0
    sent: int = 0
    won: int = 0
    lost: int = 0
    revenue: dict[str, float] = field(default_factory=dict)  # won amounts by currency: never added across
    downtime_hours: float = 0.0
    downtime_cost: float = 0.0

    @property
    def no_fault_rate(self) -> float | None:
        """Share of judged alerts (a fault confirmed, or none found) where the technician found nothing."""
        judged = self.confirmed + self.no_fault
        return self.no_fault / judged if judged else None

    @property
    def acceptance(self) -> float | None:
        """Won offers out of those the customer answered or let expire after receiving them."""
        answered = self.won + self.lost
        return self.won / answered if answered else None

    def __iadd__(self, other: Figures) -> Figures:
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, dict):
                mine = dict(mine)  # a fresh dict: another Figures may share the one it had
                for currency, amount in theirs.items():
                    mine[currency] = mine.get(currency, 0.0) + amount
                setattr(self, f.name, mine)
            else:
                setattr(self, f.name, mine + theirs)
        return self

    def revenue_lines(self, currency: str) -> list[tuple[str, float]]:
        """Revenue per currency: `currency` (the catalog's) first, 0 if nothing was won in it, then the
        others by code."""
        others = sorted((c, amount) for c, amount in self.revenue.items() if c != currency)
        return [(currency, self.revenue.get(currency, 0.0)), *others]


def month_of(when: datetime) -> date:
    """The first day of the month an event falls in (UTC)."""
    return date(when.year, when.month, 1)


def by_account_and_month(
    sess: Session, customer_ids: list[int], start: datetime, end: datetime, cat: catalog.Catalog | None = None
) -> dict[tuple[int, date], Figures]:
    """Figures per (customer, month) for alerts first seen and offers proposed in [start, end)."""
    out: dict[tuple[int, date], Figures] = defaultdict(Figures)
    if not customer_ids:
        return out
    downtime = (cat or catalog.default()).downtime
    alerts = (
        select(Alert.customer_id, Alert.first_seen, Alert.finding, Machine.machine_type)
        .join(Machine, Machine.id == Alert.machine_id)
        .where(Alert.customer_id.in_(customer_ids), Alert.first_seen >= start, Alert.first_seen < end)
    )
    for customer_id, first_seen, finding, machine_type in sess.execute(alerts):
        fig = out[customer_id, month_of(first_seen)]
        fig.alerts += 1
        if finding in CAUGHT:
            cost = downtime.get(machine_type, downtime[catalog.DEFAULT_SEGMENT])
            fig.confirmed += 1
            fig.downtime_hours += cost.hours
            fig.downtime_cost += cost.hours * cost.cost_per_hour
        elif finding == NO_FAULT:
            fig.no_fault += 1
    offers = select(
        Offer.customer_id,
        Offer.created_at,
        Offer.status,
        Offer.decided_at,
        Offer.revenue,
        Offer.currency,
        delivered().label("delivered"),
    ).where(Offer.customer_id.in_(customer_ids), Offer.created_at >= start, Offer.created_at < end)
    for customer_id, created_at, status, decided_at, revenue, currency, was_sent in sess.execute(offers):
        fig = out[customer_id, month_of(created_at)]
        fig.proposed += 1
        fig.approved += int(decided_at is not None and status != "rejected")
        fig.sent += int(bool(was_sent))
        if status == "accepted":
            fig.won += 1
            fig.revenue[currency] = fig.revenue.get(currency, 0.0) + float(revenue or 0.0)
        elif status == "declined" or (status == "expired" and was_sent):
            fig.lost += 1
    return out
