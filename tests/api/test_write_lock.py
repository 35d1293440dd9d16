"""API writes beside other writers on SQLite: another process commits between a route's read and write."""

from __future__ import annotations

from sqlalchemy import select

from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import Alert, Label
from tests.api.support import build_world
from tests.write_lock import commit_elsewhere_before_first_write


def test_a_resolve_with_a_finding_waits_for_the_lock_instead_of_failing(tmp_path) -> None:
    """The route reads the alert, then writes it and its finding's label; deferred, that write failed at
    once with "database is locked" when another connection committed in between."""
    world = build_world(f"sqlite:///{tmp_path / 'servicecast.db'}")
    alert_id, tech = world.alerts["acme"][0], world.headers("tech")
    with world.client() as client:
        assert client.post(f"{API_PREFIX}/alerts/{alert_id}/ack", headers=tech).status_code == 200
        with commit_elsewhere_before_first_write(client.app.state.engine) as happened:
            resolved = client.post(
                f"{API_PREFIX}/alerts/{alert_id}/resolve", json={"finding": "confirmed_fault"}, headers=tech
            )
    assert resolved.status_code == 200, resolved.text
    assert happened == ["waited"]
    with session(world.engine) as sess:
        assert sess.get(Alert, alert_id).status == "resolved"
        assert sess.scalars(select(Label.ref)).all() == [f"alert:{alert_id}"]
