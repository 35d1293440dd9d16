"""Offers follow the machine: withdrawn on "no fault found" or falling risk, expired, and told to the CRM
only when it has them; the contact budget counts real contacts only."""

from __future__ import annotations

import pickle
import re
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from api import contacts, events, offer_lifecycle, offers, policy, routing
from api.auth import Principal
from fleet import registry
from fleet.audit import operator
from fleet.db import session
from fleet.tables import Alert, Customer, Machine, ModelVersion, Offer, OutboxMessage, WorkflowEvent, utcnow
from tests.api.routing_support import SECRET, WebhookReceiver, approved_offers, settings_for
from tests.api.support import NOW, add_prediction, build_world


@pytest.fixture
def receiver():
    recv = WebhookReceiver().start()
    yield recv
    recv.stop()


def _offers(engine: Engine, customer_id: int) -> list[Offer]:
    with session(engine) as sess:
        rows = sess.scalars(select(Offer).where(Offer.customer_id == customer_id).order_by(Offer.id)).all()
        sess.expunge_all()
        return list(rows)


def test_proposals_are_not_contacts_but_sent_offers_and_visits_are(database_url) -> None:
    world = build_world(database_url)
    acme, machines = world.customers["acme"], world.machines["acme"]
    # Four more fitting predictions (five proposals): with a budget of 3 contacts, proposals do not use it.
    for machine, risk, mode in [
        (machines[1], 0.65, "overheating"),
        (machines[2], 0.75, "bearing_wear"),
        (machines[2], 0.65, "overheating"),
        (machines[2], 0.55, "overheating"),
    ]:
        add_prediction(world.engine, machine, risk=risk, mode=mode, hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    assert len(_offers(world.engine, acme)) == 5  # without a single contact yet
    with session(world.engine) as sess:
        assert contacts.recent_contacts(sess, acme, NOW) == 0
        # A technician's visit (an alert resolved with a finding) and a delivered offer are contacts.
        visited = sess.scalars(select(Alert).where(Alert.customer_id == acme)).first()
        visited.resolved_at, visited.finding = NOW - timedelta(days=1), "confirmed_fault"
        sess.add(
            OutboxMessage(
                event_id="offer-1-approved",
                event_type="com.servicecast.offer.approved",
                destination="webhook",
                customer_id=acme,
                offer_id=_offers(world.engine, acme)[0].id,
                payload={},
                status="delivered",
                delivered_at=NOW - timedelta(days=3),
            )
        )
    with session(world.engine) as sess:
        assert contacts.recent_contacts(sess, acme, NOW) == 2
        assert contacts.recent_contacts(sess, acme, NOW + timedelta(days=6, hours=23)) == 0


def test_no_fault_found_withdraws_the_unsent_offer_and_the_crm_never_hears_of_it(
    database_url, receiver
) -> None:
    world = build_world(database_url, webhook_url=receiver.url, webhook_secret=SECRET)
    machine = world.machines["acme"][1]
    (offer,) = [o for o in _offers(world.engine, world.customers["acme"]) if o.machine_id == machine]
    assert offer.status == "proposed" and offer.alert_id is not None
    with session(world.engine) as sess:
        alert = sess.get(Alert, offer.alert_id)
        alert.status, alert.finding, alert.resolved_at = "resolved", "no_fault_found", NOW
    report = policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    assert report.offers_withdrawn == 1
    assert _offers(world.engine, world.customers["acme"])[0].status == "withdrawn"
    routing.deliver_due(engine=world.engine, settings=world.settings)
    assert receiver.requests == []


def test_falling_risk_withdraws_unsent_offers_of_the_machine(database_url) -> None:
    world = build_world(database_url)
    machine = world.machines["acme"][1]
    add_prediction(world.engine, machine, risk=0.2, hours_ahead=900)
    report = policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    assert report.offers_withdrawn == 1
    assert [o.status for o in _offers(world.engine, world.customers["acme"])] == ["withdrawn"]
    with session(world.engine) as sess:  # the reason in the words every page gives a risk
        why = sess.scalar(select(WorkflowEvent.data).where(WorkflowEvent.action == "withdrawn"))["why"]
    assert re.fullmatch(r"risk fell to 20 %, below the alert threshold of \d+ %", why), why


def test_expiry_tells_the_crm_only_of_the_offer_it_has(engine: Engine, receiver: WebhookReceiver) -> None:
    settings = settings_for(webhook_url=receiver.url, webhook_secret=SECRET)
    sent, unsent = approved_offers(engine, settings, count=2, enqueue=False)
    with session(engine) as sess:
        offer = sess.get(Offer, sent)
        customer, machine = sess.get(Customer, offer.customer_id), sess.get(Machine, offer.machine_id)
        events.enqueue(sess, offer=offer, customer=customer, machine=machine, settings=settings)
    routing.deliver_due(engine=engine, settings=settings)  # the CRM now has `sent` only
    now = utcnow()
    with session(engine) as sess:  # then both pass their expiry unanswered
        for offer_id in (sent, unsent):
            sess.get(Offer, offer_id).expires_at = now - timedelta(minutes=1)
    with session(engine) as sess:
        assert offer_lifecycle.sweep(sess, now=now, settings=settings) == (0, 2)
    routing.deliver_due(engine=engine, settings=settings)
    assert set(receiver.accepted) == {f"offer-{sent}-approved", f"offer-{sent}-expired"}
    expired = receiver.accepted[f"offer-{sent}-expired"]
    assert (
        expired["type"] == "com.servicecast.offer.expired"
        and expired["data"]["reason"] == "no answer in time"
    )


@pytest.mark.parametrize("first", ["router", "sweep"])
def test_an_approval_still_queued_when_its_offer_expires_never_reaches_the_crm(
    engine: Engine, receiver: WebhookReceiver, first: str
) -> None:
    # The sweep expires approved offers not yet sent; the router, run before or after it, agrees.
    settings = settings_for(webhook_url=receiver.url, webhook_secret=SECRET)
    (offer_id,) = approved_offers(engine, settings)  # approved, its delivery queued (the router was down)
    now = utcnow()
    with session(engine) as sess:
        sess.get_one(Offer, offer_id).expires_at = now - timedelta(minutes=1)
    order = ["router", "sweep"] if first == "router" else ["sweep", "router"]
    for step in [*order, "router"]:
        if step == "router":
            routing.deliver_due(engine=engine, settings=settings)
        else:
            with session(engine) as sess:
                assert offer_lifecycle.sweep(sess, now=now, settings=settings) == (0, 1)
    assert receiver.requests == []  # neither the approval of an expired offer nor its expiry
    with session(engine) as sess:
        assert sess.get_one(Offer, offer_id).status == "expired"
        row = sess.scalars(select(OutboxMessage).where(OutboxMessage.offer_id == offer_id)).one()
        assert row.status == "cancelled" and "expired" in row.last_error, row.last_error


def test_an_approval_still_queued_when_its_alert_is_found_no_fault_never_reaches_the_crm(
    database_url, receiver
) -> None:
    world = build_world(database_url, webhook_url=receiver.url, webhook_secret=SECRET)
    acme = world.customers["acme"]
    (offer,) = [o for o in _offers(world.engine, acme) if o.machine_id == world.machines["acme"][1]]
    manager = Principal(world.users["am-acme"], "am-acme", "account_manager", frozenset({acme}))
    with session(world.engine) as sess:
        offers.approve(sess, sess.get_one(Offer, offer.id), by=manager, now=utcnow(), settings=world.settings)
    with session(world.engine) as sess:  # the technician found nothing before the router ran
        alert = sess.get_one(Alert, offer.alert_id)
        alert.status, alert.finding, alert.resolved_at = "resolved", "no_fault_found", utcnow()
    report = routing.deliver_due(engine=world.engine, settings=world.settings)
    assert (report.cancelled, receiver.requests) == (1, [])
    report = policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
    assert report.offers_withdrawn == 1
    routing.deliver_due(engine=world.engine, settings=world.settings)
    assert receiver.requests == []


# "sweep": what a policy batch leaves when a revocation commits between its grant read and its offer (the
# grant gone, an offer still open); the policy's sweep withdraws such offers as the revocation does.
@pytest.mark.parametrize("by", ["revocation", "sweep"])
def test_consent_revocation_withdraws_with_ids_only_and_unsent_offers_stay_unknown(
    engine: Engine, receiver: WebhookReceiver, by: str
) -> None:
    settings = settings_for(webhook_url=receiver.url, webhook_secret=SECRET)
    sent, unsent = approved_offers(engine, settings, count=2, enqueue=False)
    with session(engine) as sess:
        from api import events
        from fleet.tables import Customer, Machine

        offer = sess.get(Offer, sent)
        customer, machine = sess.get(Customer, offer.customer_id), sess.get(Machine, offer.machine_id)
        events.enqueue(sess, offer=offer, customer=customer, machine=machine, settings=settings)
        customer_id = customer.id
    routing.deliver_due(engine=engine, settings=settings)
    with session(engine) as sess:
        if by == "revocation":
            assert offers.revoke_consent(sess, customer_id, "offers", operator(), settings=settings) == 2
        else:
            registry.revoke_purpose(sess, customer_id=customer_id, purpose="offers", by=None)
    if by == "sweep":
        with session(engine) as sess:
            assert offer_lifecycle.sweep(sess, now=utcnow(), settings=settings) == (2, 0)
            assert offer_lifecycle.sweep(sess, now=utcnow(), settings=settings) == (0, 0)
    routing.deliver_due(engine=engine, settings=settings)
    assert set(receiver.accepted) == {f"offer-{sent}-approved", f"offer-{sent}-withdrawn"}
    withdrawn = receiver.accepted[f"offer-{sent}-withdrawn"]["data"]
    assert withdrawn == {
        "schema_version": 1,
        "offer_id": sent,
        "customer_id": customer_id,
        "status": "withdrawn",
    }
    with session(engine) as sess:
        statuses = dict(sess.execute(select(Offer.id, Offer.status)).all())
        assert statuses == {sent: "withdrawn", unsent: "withdrawn"}
        assert sess.scalar(select(func.count()).select_from(OutboxMessage)) == 2


def test_no_offer_below_the_alert_threshold_so_none_is_proposed_then_withdrawn(database_url) -> None:
    """A risk the catalog would sell to (0.75) but below the version's trained threshold (0.8) proposes
    nothing: otherwise each pass proposed an offer that the next prediction withdrew again."""
    world = build_world(database_url)
    machine = world.machines["acme"][2]
    with session(world.engine) as sess:
        sess.add(
            ModelVersion(
                version="test-1",  # the version add_prediction's rows name
                machine_type=sess.get(Machine, machine).machine_type,
                kind="fleet",
                params={},
                metrics={},
                artifact=pickle.dumps(None),
                active=True,
                threshold=0.8,
            )
        )
    before = [o.id for o in _offers(world.engine, world.customers["acme"])]
    for _ in range(2):
        add_prediction(world.engine, machine, risk=0.75)
        report = policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
        assert report.offers_proposed == 0
    with session(world.engine) as sess:
        assert sess.scalars(select(Offer.id).where(Offer.machine_id == machine)).all() == []
    assert [o.id for o in _offers(world.engine, world.customers["acme"])] == before
    add_prediction(world.engine, machine, risk=0.85)  # at the threshold: an alert, and an offer on it
    assert policy.run_once(engine=world.engine, settings=world.settings, now=NOW).offers_proposed == 1
    with session(world.engine) as sess:
        assert sess.scalars(select(Offer.alert_id).where(Offer.machine_id == machine)).one() is not None
