"""The console's admin actions reach the audit trail under the signed-in admin's name."""

from __future__ import annotations

from sqlalchemy import select

from api.app import create_app
from fleet.db import session
from fleet.tables import WorkflowEvent
from models import versions as model_versions
from tests.api.support import build_world
from tests.console.client import ConsoleClient, flash, sign_in


def test_admin_page_actions_are_audited_with_the_admin_and_the_declaration(world_url) -> None:
    world = build_world(world_url)
    acme = world.customers["acme"]
    first = model_versions.register(world.engine, model={"w": 1}, machine_type="pump")
    second = model_versions.register(world.engine, model={"w": 2}, machine_type="pump", activate=False)
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "admin")
        assert "Grant product improvement" in client.get("/admin").text
        page = client.post(
            f"/customers/{acme}/grants/product_improvement",
            data={"action": "grant", "reference": "DPA §4.2"},
        )
        assert flash(page.text) == "acme now allows its data to be used for product improvement."
        client.post("/admin/users", data={"name": "dana", "role": "field_service"})
        client.post("/admin/users/dana/revoke", data={"confirmed": "yes"})
        client.post(f"/admin/models/{second}/promote")
        assert "Roll back" in client.get("/admin").text
        page = client.post("/admin/models/pump/rollback")
        assert f"Model {first} is active again for pump." in flash(page.text)
    with session(world.engine) as sess:
        rows = sess.scalars(select(WorkflowEvent).where(WorkflowEvent.actor == "admin")).all()
    by_action = {row.action: row for row in rows}
    expected = {"consent_granted", "user_created", "key_created", "key_revoked", "promoted", "rolled_back"}
    assert expected <= set(by_action)
    assert all(row.actor_id == world.users["admin"] for row in rows)
    grant = by_action["consent_granted"]
    assert grant.data == {"purpose": "product_improvement", "reference": "DPA §4.2"}
    assert "product_improvement" in grant.after["purposes"]
    assert by_action["user_created"].after["name"] == "dana"
    promoted = by_action["promoted"]
    assert (promoted.before, promoted.after) == ({"active": first}, {"active": second})
    rolled_back = by_action["rolled_back"]
    assert (rolled_back.before, rolled_back.after) == ({"active": second}, {"active": first})
