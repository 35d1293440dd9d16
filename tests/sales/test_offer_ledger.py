"""Proposals keep the policy's log in the store, and the ledger learns the approved (edited) price."""

from __future__ import annotations

from api import offer_ledger
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
