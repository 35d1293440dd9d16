"""Auto-registration is a demo convenience: it assumes `service` only, and admins can see that it did."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import API_PREFIX, create_app
from fleet import registry
from fleet.db import session
from fleet.tables import DataUseGrant
from tests.api.support import World, build_world
from tests.console.client import sign_in


def test_auto_registration_assumes_service_only_and_admins_see_it(world_url: str) -> None:
    world: World = build_world(world_url)
    registry.auto_register(world.engine, [("newco", "press-1"), ("newco", "press-2")])
    with session(world.engine) as sess:
        newco = registry.get_customer(sess, "newco").id
        grants = sess.execute(
            select(DataUseGrant.purpose, DataUseGrant.assumed).where(DataUseGrant.customer_id == newco)
        ).all()
    assert grants == [("service", True)]
    with TestClient(create_app(world.settings)) as client:
        out = client.get(f"{API_PREFIX}/customers/{newco}", headers=world.headers("admin")).json()
        assert out["purposes"] == ["service"] and out["assumed"] == ["service"]
        acme = world.customers["acme"]
        declared = client.get(f"{API_PREFIX}/customers/{acme}", headers=world.headers("admin")).json()
        assert declared["assumed"] == []
        sign_in(client, world, "admin")
        page = client.get("/admin").text
    row = re.search(r'<tr data-customer="newco">(.*?)</tr>', page, re.S).group(1)
    assert "assumed (auto-registered)" in row
    acme_row = re.search(r'<tr data-customer="acme">(.*?)</tr>', page, re.S).group(1)
    assert "assumed" not in acme_row


def test_a_declared_grant_replaces_the_assumed_one(world_url: str) -> None:
    world: World = build_world(world_url)
    registry.auto_register(world.engine, [("newco", "press-1")])
    registry.grant(engine=world.engine, tenant="newco", purpose="offers", by="admin")
    with session(world.engine) as sess:
        newco = registry.get_customer(sess, "newco").id
        assert registry.assumed_by_customer(sess, [newco])[newco] == {"service"}
    registry.grant(engine=world.engine, tenant="newco", purpose="service", by="admin")
    with session(world.engine) as sess:
        active = sess.execute(
            select(DataUseGrant.purpose, DataUseGrant.assumed, DataUseGrant.granted_by)
            .where(DataUseGrant.customer_id == newco, DataUseGrant.revoked_at.is_(None))
            .order_by(DataUseGrant.purpose)
        ).all()
    assert active == [("offers", False, "admin"), ("service", False, "admin")]
