"""A year of alerts with findings and offers with outcomes for the ledger tests, and the figures they
should show, counted straight from the tables (not through the ledger's code)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine

from api import catalog_versions
from api.events import OFFER_APPROVED
from fleet.db import session
from fleet.tables import Alert, Machine, Offer, OutboxMessage
from tests.api.support import World

# (tenant, day, finding); 2025-10 lies before the default period (the twelve months to 2026-11-23).
ALERTS = [
    ("acme", "2026-03-05", "confirmed_fault"),
    ("acme", "2026-03-20", "no_fault_found"),
    ("acme", "2026-07-10", "replaced_before_failure"),
    ("acme", "2026-07-11", None),
    ("acme", "2026-11-02", "other"),
    ("acme", "2025-10-15", "confirmed_fault"),
    ("globex", "2026-05-05", "confirmed_fault"),
    ("globex", "2026-05-06", "no_fault_found"),
]
# (tenant, day, status, approved, delivered to the CRM, revenue)
OFFERS = [
    ("acme", "2026-03-06", "accepted", True, True, 1850.50),
    ("acme", "2026-03-07", "declined", True, True, None),
    ("acme", "2026-07-12", "expired", True, True, None),
    ("acme", "2026-07-13", "expired", True, False, None),
    ("acme", "2026-08-01", "rejected", False, False, None),
    ("acme", "2026-11-03", "withdrawn", True, False, None),
    ("acme", "2026-11-04", "proposed", False, False, None),
    ("acme", "2025-10-20", "accepted", True, True, 999.00),
    ("globex", "2026-05-07", "accepted", True, True, 2400.00),
    ("globex", "2026-05-08", "sent", True, True, None),
]
CAUGHT = {"confirmed_fault", "replaced_before_failure"}


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)


def seed(world: World) -> None:
    """Add the alerts and offers above to the world's database."""
    with session(world.engine) as sess:
        for tenant, day, finding in ALERTS:
            machine_id = world.machines[tenant][2]
            sess.add(
                Alert(
                    customer_id=world.customers[tenant],
                    machine_id=machine_id,
                    failure_mode="bearing_wear",
                    severity="high",
                    status="resolved" if finding else "open",
                    risk=0.8,
                    first_seen=_at(day),
                    last_seen=_at(day),
                    resolved_at=_at(day) if finding else None,
                    finding=finding,
                )
            )
        for tenant, day, status, approved, delivered, revenue in OFFERS:
            offer = Offer(
                customer_id=world.customers[tenant],
                machine_id=world.machines[tenant][2],
                failure_mode="bearing_wear",
                catalog_item="inspection",
                title="Bearing inspection",
                reason="worn bearings within about 4 days",
                price=1850.50,
                currency="EUR",
                expected_value=11_520.0,
                risk=0.8,
                status=status,
                created_at=_at(day),
                decided_at=_at(day) if approved or status == "rejected" else None,
                outcome_at=_at(day) if status in ("accepted", "declined", "expired") else None,
                revenue=revenue,
            )
            sess.add(offer)
            sess.flush()
            if delivered:
                sess.add(
                    OutboxMessage(
                        event_id=str(uuid.uuid4()),
                        event_type=OFFER_APPROVED,
                        destination="webhook",
                        customer_id=offer.customer_id,
                        offer_id=offer.id,
                        payload={},
                        status="delivered",
                        delivered_at=_at(day),
                    )
                )


def expected(engine: Engine, customer_id: int, start: datetime, end: datetime) -> dict[str, float]:
    """The figures of one account for [start, end), read from the tables row by row."""
    with session(engine) as sess:
        downtime = catalog_versions.in_force(sess).downtime
        alerts = sess.execute(
            select(Alert.first_seen, Alert.finding, Machine.machine_type)
            .join(Machine, Machine.id == Alert.machine_id)
            .where(Alert.customer_id == customer_id)
        ).all()
        offers = sess.execute(
            select(Offer.id, Offer.created_at, Offer.status, Offer.decided_at, Offer.revenue).where(
                Offer.customer_id == customer_id
            )
        ).all()
        sent_ids = set(
            sess.scalars(
                select(OutboxMessage.offer_id).where(
                    OutboxMessage.event_type == OFFER_APPROVED, OutboxMessage.status == "delivered"
                )
            )
        )
    alerts = [a for a in alerts if start <= a.first_seen < end]
    offers = [o for o in offers if start <= o.created_at < end]
    caught = [a for a in alerts if a.finding in CAUGHT]
    no_fault = sum(a.finding == "no_fault_found" for a in alerts)
    won = [o for o in offers if o.status == "accepted"]
    lost = [o for o in offers if o.status == "declined" or (o.status == "expired" and o.id in sent_ids)]
    hours = [downtime.get(a.machine_type, downtime["default"]) for a in caught]
    return {
        "alerts": len(alerts),
        "confirmed": len(caught),
        "no_fault": no_fault,
        "no_fault_rate": no_fault / (len(caught) + no_fault) if caught or no_fault else None,
        "proposed": len(offers),
        "approved": sum(o.decided_at is not None and o.status != "rejected" for o in offers),
        "sent": sum(o.id in sent_ids for o in offers),
        "won": len(won),
        "lost": len(lost),
        "acceptance": len(won) / (len(won) + len(lost)) if won or lost else None,
        "revenue": sum(o.revenue for o in won),
        "downtime_hours": sum(d.hours for d in hours),
        "downtime_cost": sum(d.hours * d.cost_per_hour for d in hours),
    }
