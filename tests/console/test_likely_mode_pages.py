"""The alert and machine pages name the other likely failure modes beside the most likely one."""

from __future__ import annotations

import re

from sqlalchemy import select

from api import policy
from fleet import machine_types
from fleet.db import session
from fleet.tables import Alert, Offer
from simulators.machine_types import TYPES_FILE
from tests.api.support import NOW, World, add_prediction, alert_naming
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


def test_an_oem_limit_alert_names_its_sensor_as_the_type_does(client: ConsoleClient, world: World) -> None:
    # A cold-start alert's mode is `limit:vibration_rms_mm_s`: the pages showed "limit:vibration rms mm s".
    machine_types.apply_file(engine=world.engine, path=TYPES_FILE)
    machine = world.machines["acme"][2]
    add_prediction(world.engine, machine, risk=1.0, mode="limit:vibration_rms_mm_s", hours_ahead=24)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        alert_id = sess.scalar(select(Alert.id).where(Alert.machine_id == machine))
    sign_in(client, world, "tech")
    page = client.get(f"/alerts/{alert_id}").text
    assert _text(page, "alert-mode") == "vibration beyond its OEM limit"
    assert "limit:" not in page
    # The queue, fleet and account pages show many machines: each names the sensor as its type does too.
    for path in ("/alerts", "/fleet", f"/accounts/{world.customers['acme']}"):
        shown = client.get(path).text
        assert "vibration beyond its OEM limit" in shown and "rms mm s" not in shown, path
    offer_id = world.offers["acme"][0]
    with session(world.engine) as sess:  # an offer on a machine of the same type, made on such an alert
        sess.get(Offer, offer_id).failure_mode = "limit:vibration_rms_mm_s"
    sign_in(client, world, "am-acme")
    offer = client.get(f"/offers/{offer_id}").text
    assert "of vibration beyond its OEM limit" in offer and "rms mm s" not in offer
