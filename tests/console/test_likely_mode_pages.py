"""The alert and machine pages name the other likely failure modes beside the most likely one."""

from __future__ import annotations

import re

from sqlalchemy import select

from api import policy
from fleet.db import session
from fleet.tables import Alert, Prediction
from tests.api.support import NOW, World, add_prediction
from tests.console.client import ConsoleClient, sign_in

LIKELY = [{"mode": "seal_leak", "share": 0.55}, {"mode": "bearing_wear", "share": 0.41}]
NAMED = "seal leak; also possible: bearing wear (41 %), likely given a failure"


def _text(html: str, dd_id: str) -> str:
    found = re.search(rf'<dd id="{dd_id}">(.*?)</dd>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()


def test_the_alert_and_machine_pages_say_what_else_may_fail(client: ConsoleClient, world: World) -> None:
    machine = world.machines["acme"][2]
    prediction = add_prediction(world.engine, machine, risk=0.9, mode="seal_leak", hours_ahead=24)
    with session(world.engine) as sess:
        sess.get(Prediction, prediction).likely_modes = LIKELY
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        alert_id = sess.scalar(select(Alert.id).where(Alert.machine_id == machine))
    sign_in(client, world, "tech")
    assert _text(client.get(f"/alerts/{alert_id}").text, "alert-mode") == NAMED
    assert _text(client.get(f"/machines/{machine}").text, "machine-mode") == NAMED
    # An alert whose prediction named one mode says only that one.
    only = world.alerts["acme"][0]
    assert _text(client.get(f"/alerts/{only}").text, "alert-mode") == "bearing wear"
