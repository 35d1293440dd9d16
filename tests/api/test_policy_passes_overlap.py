"""Two policy passes at once (a worker and a manual `servicecast policy`): each sweep acts once.

The first pass is held at the commit of its first transaction that writes to the audit trail (the sweep
under test); the second runs meanwhile until it waits for a lock or ends, then the first goes on. On
PostgreSQL (READ COMMITTED) a sweep of the second pass that read before that commit would act again; on
SQLite the write lock already makes the passes' transactions take turns.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from api import alerts, offers, policy
from api.auth import Principal
from fleet import registry, telemetry
from fleet.db import session
from fleet.tables import Alert, Offer, OutboxMessage, WorkflowEvent
from tests import overlap
from tests.api.support import NOW, World, build_world

TECH = Principal(user_id=None, name="dispatcher", role="admin", customers=None)  # type: ignore[arg-type]


def _world(url: str) -> World:
    # The second pass waits for SQLite's write lock while the first is held: more than the 5 s default.
    return build_world(
        url, database_busy_timeout_ms=overlap.GUARD_S * 1000, webhook_url="http://127.0.0.1:9/hook"
    )


def _two_passes(world: World, now: datetime) -> list[policy.PolicyReport]:
    """Pass 1 held at the commit of its first audited transaction while pass 2 runs until it waits or ends."""
    return overlap.two_at_once(
        world.engine,
        lambda: policy.run_once(engine=world.engine, settings=world.settings, now=now),
        held_after=lambda statement: statement.startswith("INSERT INTO workflow_events"),
        waits_after=lambda statement: statement == "BEGIN IMMEDIATE",  # SQLite: waits for the write lock next
    )


def _live_machine(world: World, last: datetime) -> int:
    """acme's third machine (no alert, no offer), two readings a minute apart, sent live up to `last`."""
    machine = world.machines["acme"][2]
    rows = [
        {
            "customer_id": world.customers["acme"],
            "machine_id": machine,
            "seq": seq,
            "ts": last - timedelta(minutes=2 - seq),
            "readings": {"temperature_c": 60.0},
            "received_at": last - timedelta(minutes=2 - seq),
        }
        for seq in (1, 2)
    ]
    with world.engine.begin() as conn:
        telemetry.insert_telemetry(conn, rows)
    return machine


def _escalated(world: World) -> datetime:
    return NOW + timedelta(minutes=world.settings.alert_escalate_after_min + 1)  # both critical alerts


def _expired(world: World) -> datetime:
    """Both offers expire; the CRM has acme's (approved, delivered): its expiry is queued for the CRM."""
    acme, offer_id = world.customers["acme"], world.offers["acme"][0]
    manager = Principal(world.users["am-acme"], "am-acme", "account_manager", frozenset({acme}))
    with session(world.engine) as sess:
        sess.execute(update(Offer).values(expires_at=NOW + timedelta(minutes=10)))
        offers.approve(sess, sess.get_one(Offer, offer_id), by=manager, now=NOW, settings=world.settings)
    with session(world.engine) as sess:
        sess.execute(update(OutboxMessage).values(status="delivered"))
        sess.execute(update(Offer).where(Offer.id == offer_id).values(status="sent"))
    return NOW + timedelta(minutes=20)


def _no_fault(world: World) -> datetime:
    with session(world.engine) as sess:
        for offer in sess.scalars(select(Offer)):
            alert = sess.get_one(Alert, offer.alert_id)
            alerts.acknowledge(sess, alert, TECH, NOW)
            alerts.resolve(sess, alert, finding="no_fault_found", text=None, parts_used=[], by=TECH, now=NOW)
    return NOW + timedelta(minutes=20)


def _ungranted(world: World) -> datetime:
    with session(world.engine) as sess:
        registry.revoke_purpose(sess, customer_id=world.customers["acme"], purpose="offers", by=None)
    return NOW + timedelta(minutes=20)


def _no_data(world: World) -> datetime:
    _live_machine(world, NOW - timedelta(hours=1))
    return NOW


def _data_back(world: World) -> datetime:
    _live_machine(world, NOW - timedelta(hours=1))
    assert policy.run_once(engine=world.engine, settings=world.settings, now=NOW).no_data_opened == 1
    machine = world.machines["acme"][2]
    back = NOW + timedelta(minutes=10)
    row = {"customer_id": world.customers["acme"], "machine_id": machine, "seq": 3, "ts": back}
    with world.engine.begin() as conn:
        telemetry.insert_telemetry(conn, [row | {"readings": {"temperature_c": 60.0}, "received_at": back}])
    return back + timedelta(minutes=1)


# What makes the sweep act, and what it should do: each action once per subject.
CASES = {
    "escalated": (_escalated, {"escalated": 2}),
    "expired": (_expired, {"expired": 2}),
    "withdrawn, no fault found": (_no_fault, {"withdrawn": 2}),
    "withdrawn, consent revoked": (_ungranted, {"withdrawn": 1}),
    "no data": (_no_data, {"opened": 1}),
    "data back": (_data_back, {"resolved": 1}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_two_passes_at_once_act_once(world_url: str, case: str) -> None:
    world = _world(world_url)
    prepare, expected = CASES[case]
    now = prepare(world)
    with session(world.engine) as sess:
        before = sess.scalar(select(func.max(WorkflowEvent.id)))
    reports = _two_passes(world, now)
    with session(world.engine) as sess:
        trail = sess.execute(
            select(WorkflowEvent.subject, WorkflowEvent.subject_id, WorkflowEvent.action).where(
                WorkflowEvent.id > before
            )
        ).all()
        no_data = sess.scalars(select(Alert.machine_id).where(Alert.failure_mode == "no_data")).all()
        outbox = sess.scalars(select(OutboxMessage.event_id).where(OutboxMessage.status == "pending")).all()
    acts = Counter(tuple(row) for row in trail)
    assert Counter(action for _, _, action in acts.elements()) == expected, acts
    assert set(acts.values()) == {1}, acts
    assert len(no_data) == len(set(no_data))
    crm = [f"offer-{world.offers['acme'][0]}-expired"] if case == "expired" else []
    assert outbox == crm  # the CRM is told once of an offer it has; the others it never got
    counted = {
        "escalated": sum(r.escalated for r in reports),
        "expired": sum(r.offers_expired for r in reports),
        "withdrawn": sum(r.offers_withdrawn for r in reports),
        "opened": sum(r.no_data_opened for r in reports),
        "resolved": sum(r.no_data_resolved for r in reports),
    }
    assert {action: counted[action] for action in expected} == expected


def test_overdue_alerts_escalate_oldest_first(world_url: str) -> None:
    """By first seen, then id, on either database (PostgreSQL read them in no order: here its heap's)."""
    world = _world(world_url)
    with session(world.engine) as sess:
        critical = select(Alert.id).where(Alert.severity == "critical").order_by(Alert.id)
        acme, globex = sess.scalars(critical).all()  # the customers' first machines', in that order
        sess.get_one(Alert, globex).first_seen = NOW - timedelta(minutes=30)
    report = policy.run_once(engine=world.engine, settings=world.settings, now=_escalated(world))
    assert report.escalated == 2
    with session(world.engine) as sess:
        escalated = select(WorkflowEvent.subject_id).where(WorkflowEvent.action == "escalated")
        order = sess.scalars(escalated.order_by(WorkflowEvent.id)).all()
    assert order == [globex, acme]
