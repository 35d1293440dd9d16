"""Over HTTP: a live machine sending a quarter of its usual rate reads degraded; its alert names no part."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from api import connectivity, policy, silence
from api.app import create_app
from fleet import telemetry
from fleet.db import session
from fleet.tables import Alert
from tests.api.support import NOW, build_world
from tests.console.client import ConsoleClient, sign_in

DEGRADED = "degraded: 25 % of its usual rate in the last hour"
LATER = NOW + silence.RATE_EVERY  # the world's own policy pass checked rates at NOW


def test_a_machine_at_a_quarter_of_its_rate_reads_degraded_and_its_alert_offers_no_part_finding(
    world_url: str,
) -> None:
    world = build_world(world_url)
    machine_id, customer_id = world.machines["acme"][0], world.customers["acme"]
    # a day of readings once a minute, then in the last hour one in four (arrival = reading time)
    day_before = [LATER - timedelta(hours=1, minutes=m) for m in range(24 * 60)]
    last_hour = [LATER - timedelta(minutes=m) for m in range(0, 60, 4)]
    rows = [
        {"customer_id": customer_id, "machine_id": machine_id, "seq": i + 1, "ts": at, "readings": {}}
        | {"received_at": at}
        for i, at in enumerate(sorted(day_before + last_hour))
    ]
    with world.engine.begin() as conn:
        telemetry.insert_telemetry(conn, rows)
    report = policy.run_once(engine=world.engine, settings=world.settings, now=LATER)
    assert report.low_rate_opened == 1
    with session(world.engine) as sess:
        alert_id = sess.scalar(select(Alert.id).where(Alert.failure_mode == connectivity.LOW_DATA_RATE))
    with ConsoleClient(create_app(world.settings)) as client:
        client.app.state.clock = lambda: LATER
        sign_in(client, world, "tech")
        fleet = client.get("/fleet").text
        assert f'<span class="badge link-degraded">{DEGRADED}</span>' in fleet
        machine = client.get(f"/machines/{machine_id}").text
        assert re.search(rf'id="machine-link"><span class="badge link-degraded">{DEGRADED}<', machine)
        client.post(f"/alerts/{alert_id}/ack")
        page = client.get(f"/alerts/{alert_id}").text
    assert f"Only 25 % of its usual rate arrived in the hour before {LATER:%Y-%m-%d %H:%M} UTC" in page
    findings = re.findall(r'name="finding" value="(\w+)"', page)
    assert findings == ["no_fault_found", "other"] and 'name="component"' not in page
