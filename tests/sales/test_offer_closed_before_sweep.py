"""An offer the next sweep will close (expired, "no fault found", consent revoked) cannot be approved
meanwhile, neither as it is nor edited, through the API or the console."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from api.app import API_PREFIX, create_app
from fleet import registry
from fleet.db import session
from fleet.tables import Alert, Offer, OutboxMessage, utcnow
from tests.api.support import World, build_world
from tests.console.client import ConsoleClient, flash, sign_in


def _close(world: World, offer_id: int, cause: str) -> str:
    """Make the offer one the sweep would close, without sweeping; returns the refusal's expected reason."""
    with session(world.engine) as sess:
        offer = sess.get_one(Offer, offer_id)
        if cause == "expired":
            offer.expires_at = utcnow() - timedelta(minutes=5)
            return f"it expired on {offer.expires_at:%Y-%m-%d %H:%M} UTC"
        if cause == "no_fault_found":
            alert = sess.get_one(Alert, offer.alert_id)
            alert.status, alert.finding, alert.resolved_at = "resolved", "no_fault_found", utcnow()
            return f"the technician found no fault (alert {alert.id})"
        registry.revoke_purpose(sess, customer_id=offer.customer_id, purpose="offers", by=None)
        return "the customer has withdrawn its consent to offers"


@pytest.mark.parametrize("cause", ["expired", "no_fault_found", "consent_revoked"])
def test_an_offer_the_sweep_will_close_is_refused_409_in_api_and_console(database_url, cause) -> None:
    world = build_world(database_url, webhook_url="http://127.0.0.1:9/hook")
    offer_id = world.offers["acme"][0]
    why = _close(world, offer_id, cause)
    am = world.headers("am-acme")
    with world.client() as client:
        for edit in ({}, {"price": 400}, {"title": "Bearing swap"}):
            refused = client.post(f"{API_PREFIX}/offers/{offer_id}/approve", json=edit, headers=am)
            assert refused.status_code == 409, refused.text
            assert why in refused.json()["detail"]
    with ConsoleClient(create_app(world.settings)) as console:
        sign_in(console, world, "am-acme")
        page = f"/offers/{offer_id}"
        shown = console.post(
            f"{page}/approve", data={"price": "400"}, headers={"referer": f"http://testserver{page}"}
        )
        assert shown.status_code == 409, shown.text  # answered on the offer's page, its form kept
        assert why in flash(shown.text)
    with session(world.engine) as sess:
        offer = sess.get_one(Offer, offer_id)
        assert (offer.status, offer.decided_at) == ("proposed", None)
        assert sess.scalar(select(func.count()).select_from(OutboxMessage)) == 0
