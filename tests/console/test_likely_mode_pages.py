"""The alert and machine pages name the other likely failure modes beside the most likely one."""

from __future__ import annotations

import re

from tests.api.support import World, alert_naming
from tests.console.client import ConsoleClient, sign_in

LIKELY = [{"mode": "seal_leak", "share": 0.55}, {"mode": "bearing_wear", "share": 0.41}]
NAMED = "seal leak; also possible: bearing wear (41 %), likely given a failure"


def _text(html: str, dd_id: str) -> str:
    found = re.search(rf'<dd id="{dd_id}">(.*?)</dd>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()


def test_the_alert_and_machine_pages_say_what_else_may_fail(client: ConsoleClient, world: World) -> None:
    machine = world.machines["acme"][2]
    alert_id = alert_naming(world, machine, LIKELY)
    sign_in(client, world, "tech")
    assert _text(client.get(f"/alerts/{alert_id}").text, "alert-mode") == NAMED
    assert _text(client.get(f"/machines/{machine}").text, "machine-mode") == NAMED
    # An alert whose prediction named one mode says only that one.
    only = world.alerts["acme"][0]
    assert _text(client.get(f"/alerts/{only}").text, "alert-mode") == "bearing wear"
