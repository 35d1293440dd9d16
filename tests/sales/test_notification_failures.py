"""A subscriber sees when its notifications do not get through: retried, then given up after the bounded
number of attempts, in the API and on the Notifications page; and no more once one is delivered again."""

from __future__ import annotations

import pytest

from api import policy, routing
from api.app import API_PREFIX, create_app
from fleet.tables import utcnow
from tests.api.support import World, add_prediction, build_world
from tests.console.client import ConsoleClient, sign_in
from tests.sales.test_notifications import IncomingWebhook, _route_all

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"


@pytest.fixture
def failing_hook():
    receiver = IncomingWebhook(fail_first=10**6, fail_status=500)
    yield receiver
    receiver.stop()


def _alert_queued(world: World, tenant: str) -> int:
    add_prediction(world.engine, world.machines[tenant][2], risk=0.92, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
    with world.client() as client:
        alerts = client.get(f"{API_PREFIX}/alerts", headers=world.headers("tech")).json()
    return max(alert["id"] for alert in alerts)


def _problem(world: World) -> str | None:
    with world.client() as client:
        (sub,) = client.get(SUBSCRIBE, headers=world.headers("tech")).json()
    return sub["delivery_problem"]


@pytest.mark.expect_logged_errors  # the router's dead letter
def test_a_failing_webhook_is_shown_retried_then_given_up_until_one_gets_through(database_url, failing_hook):
    """Before: the subscription said nothing; only the router's log told of the dead-lettered notification."""
    world = build_world(
        database_url,
        webhook_allow_networks="127.0.0.1",
        alert_escalate_after_min=10**6,
        route_max_attempts=2,
        route_backoff_base_s=0.05,
        route_backoff_max_s=0.05,
    )
    with world.client() as client:
        body = {"channel": "webhook", "address": failing_hook.url}
        assert client.post(SUBSCRIBE, json=body, headers=world.headers("tech")).status_code == 201
    assert _problem(world) is None
    alert = _alert_queued(world, "acme")

    routing.deliver_due(engine=world.engine, settings=world.settings)
    assert _problem(world).startswith(f"retrying the notification of alert {alert} (opened), queued ")
    assert _problem(world).endswith(": 1 of at most 2 attempts failed so far: HTTP 500: ")

    _route_all(world)
    given_up = _problem(world)
    assert given_up.startswith(f"not delivered: the notification of alert {alert} (opened), queued ")
    assert given_up.endswith(", was given up after 2 attempts: HTTP 500: ")
    with ConsoleClient(create_app(world.settings)) as console:
        sign_in(console, world, "tech")
        assert given_up in console.get("/notifications").text

    failing_hook.fail_first = 0  # the receiver is mended
    _alert_queued(world, "globex")
    _route_all(world)
    assert len(failing_hook.bodies) == 1
    assert _problem(world) is None
