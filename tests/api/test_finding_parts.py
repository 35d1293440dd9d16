"""A finding names a component and failure mode of the machine's type, or the resolve is refused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from api.app import API_PREFIX, create_app
from fleet import labels, machine_types
from fleet.db import session
from fleet.tables import Alert
from models import event_features
from tests.api.support import build_world
from tests.console.client import ConsoleClient, flash, sign_in

FLEET_TYPES = Path(__file__).parents[2] / "simulators" / "fleet_types.yaml"
NOT_A_PART = "impeller9 is not a component of centrifugal_pump (bearing, seal, impeller, coupling)"


def _unresolved(world, alert_id: int) -> None:  # noqa: ANN001
    with session(world.engine) as sess:
        assert sess.scalar(select(Alert.status).where(Alert.id == alert_id)) == "acknowledged"
    with world.engine.connect() as conn:
        assert labels.read(conn, ref=f"alert:{alert_id}").empty


def test_the_api_refuses_a_finding_naming_a_part_or_mode_the_machines_type_does_not_declare(world_url):
    world = build_world(world_url)
    machine_types.apply_file(engine=world.engine, path=FLEET_TYPES)
    alert_id, tech = world.alerts["acme"][0], world.headers("tech")
    resolve = f"{API_PREFIX}/alerts/{alert_id}/resolve"
    with world.client() as client:
        client.post(f"{API_PREFIX}/alerts/{alert_id}/ack", headers=tech).raise_for_status()
        part = client.post(
            resolve, json={"finding": "confirmed_fault", "component": "impeller9"}, headers=tech
        )
        mode = client.post(resolve, json={"finding": "replaced_before_failure", "mode": "rust"}, headers=tech)
        assert (part.status_code, part.json()) == (422, {"error": "invalid_input", "detail": NOT_A_PART})
        assert mode.status_code == 422
        assert mode.json()["detail"] == (
            "rust is not a failure mode of centrifugal_pump (bearing_wear, seal_leak, impeller_fouling, "
            "coupling_failure)"
        )
        _unresolved(world, alert_id)
        done = client.post(
            resolve, json={"finding": "confirmed_fault", "component": "impeller"}, headers=tech
        )
        assert done.status_code == 200, done.text


def test_the_console_resolve_form_shows_an_undeclared_part_as_its_error(world_url):
    world = build_world(world_url)
    machine_types.apply_file(engine=world.engine, path=FLEET_TYPES)
    alert_id = world.alerts["acme"][0]
    page = f"/alerts/{alert_id}"
    referer = {"referer": f"http://testserver{page}"}
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "tech")
        client.post(f"{page}/ack", headers=referer)
        done = client.post(
            f"{page}/resolve", data={"finding": "confirmed_fault", "component": "impeller9"}, headers=referer
        )
    assert flash(done.text) == NOT_A_PART and 'class="flash error"' in done.text
    _unresolved(world, alert_id)


def _resolve_naming_no_part(world, finding: str) -> pd.DataFrame:  # noqa: ANN001
    """Resolve acme's first alert with `finding` and no component; its labels."""
    alert_id, tech = world.alerts["acme"][0], world.headers("tech")
    with world.client() as client:
        client.post(f"{API_PREFIX}/alerts/{alert_id}/ack", headers=tech).raise_for_status()
        client.post(
            f"{API_PREFIX}/alerts/{alert_id}/resolve", json={"finding": finding}, headers=tech
        ).raise_for_status()
    with world.engine.connect() as conn:
        return labels.read(conn, ref=f"alert:{alert_id}")


def test_a_finding_naming_no_part_is_a_visit_to_the_part_its_mode_belongs_to(world_url):
    world = build_world(world_url)
    machine_types.apply_file(engine=world.engine, path=FLEET_TYPES)
    found = _resolve_naming_no_part(world, "replaced_before_failure")
    # The alert's bearing_wear is the bearing's failure mode in centrifugal_pump, not a component of it.
    assert found[["kind", "component", "mode"]].values.tolist() == [
        ["replacement", "bearing", "bearing_wear"]
    ]
    visit = found.iloc[0]
    panel = pd.DataFrame({"machine": [visit["machine_id"]], "ts": [visit["ts"] + timedelta(hours=2)]})
    with world.engine.connect() as conn:
        hours = event_features.add(conn, panel, ["ev:replaced:bearing"])["ev:replaced:bearing"]
    assert hours.tolist() == [2.0]


def test_a_finding_naming_no_part_on_a_type_no_file_defines_names_no_part(world_url):
    found = _resolve_naming_no_part(build_world(world_url), "confirmed_fault")
    assert found[["kind", "component", "mode"]].values.tolist() == [["failure", "", "bearing_wear"]]
