"""Alert notifications carry an alert's risk: they reach only subscribers who may read that alert now."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from api import policy
from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import AccountAssignment, OutboxMessage, utcnow
from tests.api.support import World, add_prediction, build_world

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"


@pytest.fixture
def world(database_url: str) -> World:
    return build_world(database_url, alert_escalate_after_min=10**6)


def _subscribe(world: World, who: str, tenant: str) -> str:
    """Subscribe `who` by e-mail to `tenant`'s critical alerts; returns the outbox destination."""
    body = {"customer_id": world.customers[tenant], "channel": "email", "address": f"{who}@oem.example"}
    with world.client() as client:
        response = client.post(SUBSCRIBE, json=body, headers=world.headers(who))
    assert response.status_code == 201, response.text
    return f"notify-email:{response.json()['id']}"


def _new_critical_alert(world: World, tenant: str, machine: int) -> set[str]:
    """A new critical alert on one of `tenant`'s machines; returns the destinations notified of it."""
    add_prediction(world.engine, world.machines[tenant][machine], risk=0.93, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
    with session(world.engine) as sess:
        rows = sess.scalars(select(OutboxMessage).where(OutboxMessage.destination.like("notify-%"))).all()
        found = {row.destination for row in rows}
        sess.execute(delete(OutboxMessage))  # the next alert's rows alone
    return found


def test_an_account_manager_whose_account_withdrew_offers_consent_is_told_of_no_alert(world: World) -> None:
    manager, technician = _subscribe(world, "am-globex", "globex"), _subscribe(world, "tech", "globex")
    assert _new_critical_alert(world, "globex", 2) == {manager, technician}
    with world.client() as client:
        grant = f"{API_PREFIX}/customers/{world.customers['globex']}/grants/offers"
        revoked = client.delete(grant, headers=world.headers("admin"))
    assert revoked.status_code == 200
    # The API answers the manager 404 for this alert: its risk must not reach him by mail either.
    assert _new_critical_alert(world, "globex", 1) == {technician}


def test_an_account_manager_taken_off_an_account_is_told_of_its_alerts_no_more(world: World) -> None:
    manager = _subscribe(world, "am-acme", "acme")
    assert _new_critical_alert(world, "acme", 2) == {manager}
    with session(world.engine) as sess:
        sess.execute(delete(AccountAssignment).where(AccountAssignment.user_id == world.users["am-acme"]))
    assert _new_critical_alert(world, "acme", 1) == set()
