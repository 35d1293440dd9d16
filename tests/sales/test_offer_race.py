"""An approval racing a withdrawal on PostgreSQL (on SQLite the API's write transactions take turns): no
offer reaches the CRM after it was withdrawn or expired."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from api import alerts, offer_lifecycle, offers, routing
from api.auth import Principal
from api.errors import Conflict
from fleet.db import session
from fleet.tables import Alert, Customer, Offer, OutboxMessage, Prediction
from tests import services
from tests.api.routing_support import SECRET, WebhookReceiver
from tests.api.support import NOW, add_prediction, build_world

pytestmark = pytest.mark.postgres


@pytest.fixture
def crm():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.mark.parametrize("closing", ["risk fell", "no fault found", "expired"])
def test_an_offer_closed_while_its_approval_waits_is_not_sent(postgres_url: str, crm, closing: str) -> None:
    world = build_world(postgres_url, webhook_url=crm.url, webhook_secret=SECRET)
    acme, offer_id = world.customers["acme"], world.offers["acme"][0]
    with session(world.engine) as sess:
        offer = sess.get_one(Offer, offer_id)
        machine_id, alert_id, expires_at = offer.machine_id, offer.alert_id, offer.expires_at
    fallen = add_prediction(world.engine, machine_id, risk=0.1)
    manager = Principal(world.users["am-acme"], "am-acme", "account_manager", frozenset({acme}))
    tech = Principal(world.users["tech"], "tech", "field_service", None)
    approval: list[str] = []

    def approve() -> None:
        try:
            with session(world.engine) as sess:
                offer = sess.get_one(Offer, offer_id)
                offers.approve(sess, offer, by=manager, now=NOW, settings=world.settings)
            approval.append("approved")
        except Conflict as exc:
            approval.append(str(exc))

    def withdraw() -> None:  # what the policy's pass does, as it would at that moment
        with session(world.engine) as sess:
            if closing == "risk fell":
                prediction = sess.get_one(Prediction, fallen)
                offer_lifecycle.follow_prediction(
                    sess, prediction, threshold=0.5, now=NOW, settings=world.settings
                )
                return
            if closing == "no fault found":
                alert = sess.get_one(Alert, alert_id)
                alerts.acknowledge(sess, alert, tech, NOW)
                alerts.resolve(
                    sess, alert, finding="no_fault_found", text=None, parts_used=[], by=tech, now=NOW
                )
            offer_lifecycle.sweep(
                sess, now=expires_at if closing == "expired" else NOW, settings=world.settings
            )

    approving, withdrawing = threading.Thread(target=approve), threading.Thread(target=withdraw)
    with session(world.engine) as holder:
        # Another approval for the account holds its row: this one waits there, its checks passed.
        holder.get(Customer, acme, with_for_update=True)
        approving.start()
        while not services.waiting_on_lock(world.engine):
            approving.join(0.05)
        withdrawing.start()  # it withdraws now, or waits for the approval to end first
        while withdrawing.is_alive() and services.waiting_on_lock(world.engine) < 2:
            withdrawing.join(0.05)
    approving.join()
    withdrawing.join()

    routing.deliver_due(engine=world.engine, settings=world.settings)
    with session(world.engine) as sess:
        status = sess.get_one(Offer, offer_id).status
        outbox = sess.execute(select(OutboxMessage.event_type, OutboxMessage.status)).all()
    assert status == ("expired" if closing == "expired" else "withdrawn"), approval
    assert crm.accepted == {}, "the CRM was sent an offer that was withdrawn"
    assert [tuple(row) for row in outbox] in ([], [("com.servicecast.offer.approved", "cancelled")])
