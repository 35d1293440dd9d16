"""An alert names every failure mode its prediction found likely, in its JSON, in the list and alone."""

from __future__ import annotations

from sqlalchemy import select

from api import policy
from fleet.db import session
from fleet.tables import Alert, Prediction
from tests.api.support import NOW, add_prediction, build_world

LIKELY = [{"mode": "seal_leak", "share": 0.55}, {"mode": "bearing_wear", "share": 0.41}]


def test_the_alert_json_lists_every_likely_mode(database_url: str) -> None:
    world = build_world(database_url)
    machine = world.machines["acme"][2]
    prediction = add_prediction(world.engine, machine, risk=0.9, mode="seal_leak", hours_ahead=24)
    with session(world.engine) as sess:
        sess.get(Prediction, prediction).likely_modes = LIKELY
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        alert_id = sess.scalar(select(Alert.id).where(Alert.machine_id == machine))
    with world.client() as client:
        one = client.get(f"/api/v1/alerts/{alert_id}", headers=world.headers("tech"))
        listed = client.get("/api/v1/alerts", headers=world.headers("tech"))
    assert one.status_code == 200 and listed.status_code == 200
    assert one.json()["failure_mode"] == "seal_leak"
    assert one.json()["evidence"]["likely_modes"] == LIKELY
    [row] = [a for a in listed.json() if a["id"] == alert_id]
    assert row["evidence"]["likely_modes"] == LIKELY
