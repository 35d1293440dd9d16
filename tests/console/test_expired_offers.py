"""An offer that expired unanswered stays findable: in the inbox's closed tab, the machine's and the account's
offer history, and the API's status filter."""

from __future__ import annotations

from datetime import timedelta

from api import policy
from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import Offer, utcnow
from tests.api.support import NOW, World
from tests.console.client import ConsoleClient, sign_in


def test_an_expired_offer_is_listed_where_the_account_manager_looks(
    client: ConsoleClient, world: World
) -> None:
    offer_id = world.offers["acme"][0]
    with session(world.engine) as sess:
        offer = sess.get_one(Offer, offer_id)
        expiry, machine_id, customer_id = offer.expires_at, offer.machine_id, offer.customer_id
    policy.run_once(engine=world.engine, settings=world.settings, now=expiry + timedelta(minutes=1))
    with session(world.engine) as sess:
        assert sess.get_one(Offer, offer_id).status == "expired"
    sign_in(client, world, "am-acme")
    for page in ("/offers?tab=closed", f"/machines/{machine_id}", f"/accounts/{customer_id}"):
        assert f'data-offer="{offer_id}"' in client.get(page).text, page
    listed = client.get(f"{API_PREFIX}/offers?status=expired", headers=world.headers("am-acme"))
    assert listed.status_code == 200, listed.text
    assert [o["id"] for o in listed.json()] == [offer_id] and expiry > NOW


def test_the_offer_says_when_it_expires_and_past_it_that_approving_is_refused(
    client: ConsoleClient, world: World
) -> None:
    offer_id = world.offers["acme"][0]
    sign_in(client, world, "am-acme")
    with session(world.engine) as sess:
        expiry = sess.get_one(Offer, offer_id).expires_at
    shown = client.get(f"{API_PREFIX}/offers/{offer_id}", headers=world.headers("am-acme")).json()
    assert shown["expires_at"] == expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'id="offer-expires">{expiry:%Y-%m-%d %H:%M} UTC' in client.get(f"/offers/{offer_id}").text
    with session(world.engine) as sess:  # past its expiry, before the sweep
        expiry = sess.get_one(Offer, offer_id).expires_at = utcnow().replace(microsecond=0) - timedelta(
            minutes=1
        )
    page = client.get(f"/offers/{offer_id}").text
    assert f"expired on {expiry:%Y-%m-%d %H:%M} UTC: approving will be refused" in page
