"""An alert subscription is refused, with the reason, where its alerts would never be sent to the caller."""

from __future__ import annotations

import pytest

from api.app import API_PREFIX
from tests.api.support import World, build_world

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"


@pytest.fixture
def world(database_url: str) -> World:
    return build_world(database_url)


def _revoke_offers(world: World, tenant: str) -> None:
    with world.client() as client:
        grant = f"{API_PREFIX}/customers/{world.customers[tenant]}/grants/offers"
        assert client.delete(grant, headers=world.headers("admin")).status_code == 200


def test_an_account_manager_cannot_subscribe_to_an_account_without_offers_or_not_his(world: World) -> None:
    _revoke_offers(world, "globex")
    globex = world.customers["globex"]
    body = {"customer_id": globex, "channel": "email", "address": "am@oem.example"}
    with world.client() as client:
        refused = client.post(SUBSCRIBE, json=body, headers=world.headers("am-globex"))
        foreign = client.post(SUBSCRIBE, json=body, headers=world.headers("am-acme"))
        technician = client.post(SUBSCRIBE, json=body, headers=world.headers("tech"))
        listed = client.get(SUBSCRIBE, headers=world.headers("am-globex")).json()
    assert refused.status_code == 409, refused.text
    assert refused.json() == {
        "error": "consent_missing",
        "detail": f"customer {globex} has not granted 'offers': its alerts carry risk and reach an "
        "account manager only with that grant",
    }
    assert foreign.status_code == 404  # not his account: it does not exist for him
    assert technician.status_code == 201  # field service is told of every customer's alerts
    assert listed == []
