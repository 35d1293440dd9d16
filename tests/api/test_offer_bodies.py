"""An offer decision whose body names a field the API does not know is refused, never half applied."""

from __future__ import annotations

import pytest

from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import Offer
from tests.api.support import build_world


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("approve", {"price": 2100, "currency": "USD"}, "currency"),  # not EUR 2,100 in silence
        ("approve", {"prise": 1900}, "prise"),  # a typo: not approved at list price
        ("outcome", {"accepted": True, "amount": 2100}, "amount"),  # the CRM's name for the revenue
    ],
)
def test_an_unknown_field_is_refused_and_the_offer_is_unchanged(world_url, action, body, field) -> None:
    world = build_world(world_url)
    offer_id, am = world.offers["acme"][0], world.headers("am-acme")
    with world.client() as client:
        if action == "outcome":
            assert client.post(f"{API_PREFIX}/offers/{offer_id}/approve", json={}, headers=am).is_success
        refused = client.post(f"{API_PREFIX}/offers/{offer_id}/{action}", json=body, headers=am)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith(f"body.{field}:")
    with session(world.engine) as sess:
        offer = sess.get_one(Offer, offer_id)
        assert (offer.status, offer.price, offer.revenue) == (
            "approved" if action == "outcome" else "proposed",
            2400.0,
            None,
        )
