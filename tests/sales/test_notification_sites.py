"""A subscription naming a customer and a site: the site must be that customer's, or nothing would ever
match it (a notification needs both)."""

from __future__ import annotations

from sqlalchemy import select

from api.app import API_PREFIX
from fleet import registry
from fleet.db import session
from fleet.tables import Machine, NotificationSubscription
from tests.api.support import World, build_world

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"


def globex_site(world: World) -> int:
    """A site of globex's (with a machine of its own); its id."""
    registry.add_machine(
        engine=world.engine,
        tenant="globex",
        code="globex-press-9",
        machine_type="centrifugal_pump",
        site="plant-9",
    )
    with session(world.engine) as sess:
        return sess.scalars(select(Machine.site_id).where(Machine.code == "globex-press-9")).one()


def test_a_site_of_another_customer_than_the_one_named_is_422_and_nothing_is_stored(database_url) -> None:
    world = build_world(database_url)
    site_id = globex_site(world)
    acme, globex = world.customers["acme"], world.customers["globex"]
    body = {"customer_id": acme, "site_id": site_id, "channel": "email", "address": "tom@example.com"}
    with world.client() as client:
        mixed = client.post(SUBSCRIBE, json=body, headers=world.headers("tech"))
        assert (mixed.status_code, mixed.json()) == (
            422,
            {"error": "invalid_input", "detail": f"site_id: site {site_id} is not a site of customer {acme}"},
        )
        with session(world.engine) as sess:
            assert sess.scalars(select(NotificationSubscription)).all() == []
        same = client.post(SUBSCRIBE, json=body | {"customer_id": globex}, headers=world.headers("tech"))
        assert same.status_code == 201, same.text
        site_only = client.post(SUBSCRIBE, json=body | {"customer_id": None}, headers=world.headers("tech"))
        # The site's customer is filled in: the same subscription as the one before, answered as it is.
        assert (site_only.status_code, site_only.json()["customer_id"]) == (200, globex)
        assert site_only.json()["id"] == same.json()["id"]
