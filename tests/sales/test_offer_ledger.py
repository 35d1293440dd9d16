"""Proposals keep the policy's log in the store, and the ledger learns the approved (edited) price."""

from __future__ import annotations

from sqlalchemy import func, select

from api import offer_ledger, policy
from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import Offer
from tests.api.support import build_world


def test_a_proposal_logs_context_alternatives_and_propensity(database_url) -> None:
    world = build_world(database_url)
    with session(world.engine) as sess:
        offer = sess.get(Offer, world.offers["acme"][0])
        assert offer.policy == "first_fit" and offer.propensity == 1.0
        assert offer.context["risk"] == 0.75 and offer.context["machine_type"] == "centrifugal_pump"
        alternatives = {a["arm"]: a["probability"] for a in offer.alternatives}
        assert alternatives[f"{offer.catalog_item}@0"] == 1.0 and len(alternatives) >= 3
        assert (offer.list_price, offer.price_level, offer.catalog_version) == (offer.price, 0, 2)
        assert "_" not in offer.title and "EUR 2,400.00" in offer.reason


def test_the_approved_edited_price_is_the_action_the_ledger_learns(database_url) -> None:
    world = build_world(database_url)
    offer_id, am = world.offers["acme"][0], world.headers("am-acme")
    with world.client() as client:
        assert client.post(
            f"{API_PREFIX}/offers/{offer_id}/approve", json={"price": 2100.5}, headers=am
        ).is_success
        outcome = {"accepted": True, "revenue": 2100.5}
        assert client.post(f"{API_PREFIX}/offers/{offer_id}/outcome", json=outcome, headers=am).is_success
    with session(world.engine) as sess:
        (entry,) = offer_ledger.from_offers(sess).entries
    assert (entry.arm.item, entry.arm.price, entry.arm.list_price) == (
        "wear_part_replacement",
        2100.5,
        2400.0,
    )
    assert (entry.revenue, entry.propensity, entry.context.segment) == (2100.5, 1.0, None)
    assert [a.key for a in entry.alternatives][:3] == [
        "wear_part_replacement@0",
        "wear_part_replacement@1",
        "wear_part_replacement@2",
    ]


def test_the_learning_policy_proposes_from_the_stored_ledger_and_logs_its_propensity(database_url) -> None:
    import numpy as np

    from api import offer_policy, offers
    from fleet.settings import Settings
    from fleet.tables import Prediction
    from tests.api.support import NOW, add_prediction

    world = build_world(database_url)
    offer_id, am = world.offers["acme"][0], world.headers("am-acme")
    with world.client() as client:  # one decided offer in the ledger: approved, then lost
        assert client.post(f"{API_PREFIX}/offers/{offer_id}/approve", json={}, headers=am).is_success
        lost = {"accepted": False, "revenue": None}
        assert client.post(f"{API_PREFIX}/offers/{offer_id}/outcome", json=lost, headers=am).is_success
    prediction_id = add_prediction(world.engine, world.machines["acme"][2], risk=0.75, hours_ahead=240)
    with session(world.engine) as sess:
        ledger = offer_ledger.from_offers(sess)
        assert len(ledger.entries) == 1 and ledger.revenue() == 0.0
        chooser = offer_policy.build("learning", exploration=0.2, rows=ledger.rows())
        prediction = sess.get(Prediction, prediction_id)
        offer = offers.propose(
            sess, prediction, Settings(), NOW, policy=chooser, rng=np.random.default_rng(3)
        )
        assert offer is not None and offer.policy == "learning"
        probabilities = [a["probability"] for a in offer.alternatives]
        assert abs(sum(probabilities) - 1.0) < 1e-9 and min(probabilities) >= 0.2 / len(probabilities) - 1e-9
        chosen = next(
            a for a in offer.alternatives if a["item"] == offer.catalog_item and a["price"] == offer.price
        )
        assert offer.propensity == chosen["probability"]


def test_an_offer_that_expired_unsent_teaches_nothing_one_sent_teaches_a_no(database_url) -> None:
    from datetime import timedelta

    from fleet.tables import OutboxMessage
    from tests.api.support import NOW, add_prediction

    world = build_world(database_url)
    add_prediction(world.engine, world.machines["acme"][2], risk=0.75, hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        unsent, sent = sess.scalars(select(Offer).where(Offer.customer_id == world.customers["acme"])).all()
        sent.status = "sent"
        sess.add(
            OutboxMessage(
                event_id=f"offer-{sent.id}-approved",
                event_type="com.servicecast.offer.approved",
                destination="webhook",
                customer_id=sent.customer_id,
                offer_id=sent.id,
                payload={},
                status="delivered",
                delivered_at=NOW,
            )
        )
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW + timedelta(days=31))
    with session(world.engine) as sess:
        assert {o.status for o in sess.scalars(select(Offer))} >= {"expired"}
        entries = offer_ledger.from_offers(sess).entries
    assert [(e.arm.item, e.revenue) for e in entries] == [(sent.catalog_item, 0.0)]


def test_a_held_offer_is_not_proposed_and_the_hold_is_audited_with_its_propensity(database_url) -> None:
    import numpy as np

    from api import offer_policy, offers
    from fleet.settings import Settings
    from fleet.tables import Prediction, WorkflowEvent
    from tests.api.support import NOW, add_prediction

    class Holds(offer_policy.FirstFit):
        name = "holds"

        def propose(self, ctx, arms, rng) -> offer_policy.Proposal:
            alternatives = (*((a, 0.0) for a in arms), (offer_policy.HOLD, 1.0))
            return offer_policy.Proposal(offer_policy.HOLD, 1.0, self.name, alternatives)

    world = build_world(database_url)
    machine = world.machines["acme"][2]
    prediction_id = add_prediction(world.engine, machine, risk=0.75, hours_ahead=240)
    with session(world.engine) as sess:
        before = sess.scalar(select(func.count()).select_from(Offer))
        prediction = sess.get(Prediction, prediction_id)
        held = offers.propose(sess, prediction, Settings(), NOW, policy=Holds(), rng=np.random.default_rng(0))
        assert held is None and sess.scalar(select(func.count()).select_from(Offer)) == before
        (event,) = sess.scalars(select(WorkflowEvent).where(WorkflowEvent.action == "offer_held")).all()
    assert (event.subject, event.subject_id) == ("machine", machine)
    assert event.data["propensity"] == 1.0 and event.data["prediction_id"] == prediction_id
    assert event.data["alternatives"][-1]["arm"] == "hold@0" and event.data["context"]["risk"] == 0.75


def test_an_offer_won_without_a_revenue_figure_earned_its_approved_price(database_url) -> None:
    from api.app import create_app
    from tests.console.client import ConsoleClient, sign_in

    world = build_world(database_url, webhook_url="http://127.0.0.1:9/hook")
    by_api, by_console = world.offers["acme"][0], world.offers["globex"][0]
    with world.client() as client:
        for offer_id, who in ((by_api, "am-acme"), (by_console, "am-globex")):
            edit = {"price": 2100.5}
            assert client.post(
                f"{API_PREFIX}/offers/{offer_id}/approve", json=edit, headers=world.headers(who)
            ).is_success
        won = client.post(
            f"{API_PREFIX}/offers/{by_api}/outcome", json={"accepted": True}, headers=world.headers("am-acme")
        )
        assert won.json()["revenue"] == 2100.5
    with ConsoleClient(create_app(world.settings)) as console:
        sign_in(console, world, "am-globex")
        console.post(f"/offers/{by_console}/outcome", data={"accepted": "yes", "revenue": ""})
    with session(world.engine) as sess:
        assert [sess.get(Offer, i).revenue for i in (by_api, by_console)] == [2100.5, 2100.5]
        ledger = offer_ledger.from_offers(sess)
    assert [e.revenue for e in ledger.entries] == [2100.5, 2100.5]
