"""A subscription whose alerts its owner may no longer read (the account withdrew `offers`, or is no
longer his) is listed as suspended with the reason, sends nothing, and resumes when the reason ends."""

from __future__ import annotations

from sqlalchemy import delete, select

from api import policy, routing
from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import AccountAssignment, OutboxMessage, utcnow
from tests.api.routing_support import SmtpSink
from tests.api.support import World, add_prediction, build_world
from tests.sales import test_notifications

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"


sink = test_notifications.sink  # a real SMTP server keeping every message


def _subscribed(database_url: str, **settings: object) -> World:
    """The world, its globex account manager subscribed to globex's alerts by e-mail."""
    world = build_world(database_url, alert_escalate_after_min=10**6, **settings)
    with world.client() as client:
        body = {"customer_id": world.customers["globex"], "channel": "email", "address": "am@oem.example"}
        assert client.post(SUBSCRIBE, json=body, headers=world.headers("am-globex")).status_code == 201
    return world


def _grant(world: World, customer: int, granted: bool) -> None:
    with world.client() as client:
        grant = f"{API_PREFIX}/customers/{customer}/grants/offers"
        call = client.put if granted else client.delete
        assert call(grant, headers=world.headers("admin")).status_code == 200


def _listed(world: World, who: str) -> list[str | None]:
    with world.client() as client:
        return [s["suspended_reason"] for s in client.get(SUBSCRIBE, headers=world.headers(who)).json()]


def _critical_alert(world: World, machine: int) -> None:
    add_prediction(world.engine, machine, risk=0.93, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())


def _queued(world: World) -> list[tuple[str, str | None]]:
    with session(world.engine) as sess:
        return [tuple(r) for r in sess.execute(select(OutboxMessage.status, OutboxMessage.last_error))]


def test_a_withdrawn_offers_grant_suspends_the_subscription_until_it_is_granted_again(
    database_url: str, sink: SmtpSink
) -> None:
    world = _subscribed(database_url, smtp_url=sink.url)
    globex = world.customers["globex"]
    assert _listed(world, "am-globex") == [None]

    _grant(world, globex, False)
    withdrawn = (
        f"customer {globex} has withdrawn 'offers': its alerts carry risk and reach an account manager "
        "only with that grant; notifications resume when it grants 'offers' again"
    )
    assert _listed(world, "am-globex") == [withdrawn]
    assert _listed(world, "admin") == [withdrawn]  # the admin sees why too
    _critical_alert(world, world.machines["globex"][1])
    assert _queued(world) == []

    _grant(world, globex, True)
    assert _listed(world, "am-globex") == [None]
    _critical_alert(world, world.machines["globex"][2])
    routing.deliver_due(engine=world.engine, settings=world.settings)
    assert [m["Subject"] for m in sink.messages] == ["New critical alert: globex-pump-2 of globex"]


def test_an_account_taken_off_the_manager_suspends_his_subscription(database_url: str) -> None:
    world = _subscribed(database_url)
    globex = world.customers["globex"]
    with session(world.engine) as sess:
        sess.execute(delete(AccountAssignment).where(AccountAssignment.user_id == world.users["am-globex"]))

    assert _listed(world, "am-globex") == [
        f"customer {globex} is no longer one of your accounts; notifications resume if it is assigned to "
        "you again"
    ]


def test_a_notification_queued_before_the_grant_was_withdrawn_is_not_sent(
    database_url: str, sink: SmtpSink
) -> None:
    world = _subscribed(database_url, smtp_url=sink.url)
    globex = world.customers["globex"]
    _critical_alert(world, world.machines["globex"][2])  # queued while globex still granted `offers`
    _grant(world, globex, False)

    routing.deliver_due(engine=world.engine, settings=world.settings)

    assert sink.messages == []
    assert [status for status, _ in _queued(world)] == ["cancelled"]
    assert _queued(world)[0][1].startswith(f"subscription suspended: customer {globex} has withdrawn")
