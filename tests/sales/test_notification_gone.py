"""An incoming webhook that answers 410 Gone: its subscription is disabled with the reason, shown to its
owner (API and console), and later alert events are not sent to it again."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api import policy, routing
from api.app import API_PREFIX, create_app
from fleet.db import session
from fleet.tables import OutboxMessage, utcnow
from tests.api.support import add_prediction, build_world
from tests.console.client import ConsoleClient, sign_in
from tests.sales.test_notifications import IncomingWebhook

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"


@pytest.fixture
def gone():
    receiver = IncomingWebhook(fail_first=10**6, fail_status=410)
    yield receiver
    receiver.stop()


def _alert_and_route(world, tenant: str) -> None:
    """A critical alert on one of the tenant's machines, the policy pass that queues it, a router pass."""
    add_prediction(world.engine, world.machines[tenant][2], risk=0.92, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
    routing.deliver_due(engine=world.engine, settings=world.settings)


@pytest.mark.expect_logged_errors  # the dead letter
def test_a_gone_webhook_disables_its_subscription_with_the_reason(database_url, gone) -> None:
    world = build_world(
        database_url, route_timeout_s=2.0, alert_escalate_after_min=10**6, webhook_allow_networks="127.0.0.1"
    )
    tech = world.headers("tech")
    with world.client() as client:
        body = {"channel": "webhook", "address": gone.url}
        assert client.post(SUBSCRIBE, json=body, headers=tech).status_code == 201

    _alert_and_route(world, "acme")
    _alert_and_route(world, "globex")

    assert gone.posts == 1  # the second alert was not sent to an endpoint that said it is gone
    with session(world.engine) as sess:
        rows = sess.execute(select(OutboxMessage.status, OutboxMessage.last_error)).all()
    assert [status for status, _ in rows] == ["dead"], rows
    with world.client() as client:
        [sub] = client.get(SUBSCRIBE, headers=tech).json()
    assert sub["disabled_at"] is not None
    assert sub["disabled_reason"].startswith("the webhook answered HTTP 410"), sub
    with ConsoleClient(create_app(world.settings)) as console:
        sign_in(console, world, "tech")
        page = console.get("/notifications").text
    assert "disabled" in page and "HTTP 410" in page
