"""An alert names every failure mode its prediction found likely, in its JSON, in the list and alone."""

from __future__ import annotations

from tests.api.support import alert_naming, build_world

LIKELY = [{"mode": "seal_leak", "share": 0.55}, {"mode": "bearing_wear", "share": 0.41}]


def test_the_alert_json_lists_every_likely_mode(world_url: str) -> None:
    world = build_world(world_url)
    machine = world.machines["acme"][2]
    alert_id = alert_naming(world, machine, LIKELY)
    with world.client() as client:
        one = client.get(f"/api/v1/alerts/{alert_id}", headers=world.headers("tech"))
        listed = client.get("/api/v1/alerts", headers=world.headers("tech"))
    assert one.status_code == 200 and listed.status_code == 200
    assert one.json()["failure_mode"] == "seal_leak"
    assert one.json()["evidence"]["likely_modes"] == LIKELY
    [row] = [a for a in listed.json() if a["id"] == alert_id]
    assert row["evidence"]["likely_modes"] == LIKELY
