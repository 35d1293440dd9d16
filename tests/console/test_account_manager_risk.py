"""The console shows an account manager no risk of customers that have not granted `offers`."""

from __future__ import annotations

from api import auth
from api.app import API_PREFIX
from api.console import views
from api.console.pages import OPEN_STATES
from fleet.db import session
from tests.api.support import build_world


def test_account_manager_pages_hide_risk_without_offers_consent(world_url) -> None:
    world = build_world(world_url)
    globex = world.customers["globex"]
    with world.client() as client:
        revoked = client.delete(
            f"{API_PREFIX}/customers/{globex}/grants/offers", headers=world.headers("admin")
        )
        assert revoked.status_code == 200
        with session(world.engine) as sess:
            manager = auth.authenticate(sess, world.tokens["am-globex"])
            rows = views.fleet_rows(sess, manager)
            assert rows and all(r.prediction is None for r in rows) and all(r.risk_hidden for r in rows)
            summary = views.account_summary(sess, manager, [globex])[globex]
            assert summary == {"machines": 3, "at_risk": None, "open_alerts": None}
            assert views.alert_rows(sess, manager, states=OPEN_STATES, severity=None) == []
            tech = auth.authenticate(sess, world.tokens["tech"])
            assert any(r.prediction is not None for r in views.fleet_rows(sess, tech, customer_id=globex))
