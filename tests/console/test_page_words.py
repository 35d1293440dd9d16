"""What a user reads on console pages: names, plain words and numbers, never internals or Python reprs."""

from __future__ import annotations

import pickle
import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.db import session
from fleet.tables import Alert, Label, ModelVersion, Prediction
from tests.api.support import World
from tests.console.client import flash, sign_in, visible


def row_text(html: str, attribute: str, value: int) -> str:
    """The visible text of the table row marked `data-{attribute}="{value}"`."""
    return visible(re.search(rf'<tr data-{attribute}="{value}">(.*?)</tr>', html, re.S).group(1)).strip()


def test_an_assigned_alert_names_its_assignee_on_the_machine_and_account_pages(
    client: TestClient, world: World
) -> None:
    alert_id = world.alerts["acme"][0]
    sign_in(client, world, "tech")
    assigned = client.post(f"/alerts/{alert_id}/assign", data={"assignee_id": str(world.users["tech"])})
    assert assigned.status_code == 200
    pages = ("/alerts", f"/machines/{world.machines['acme'][0]}", f"/accounts/{world.customers['acme']}")
    for path in pages:
        text = row_text(client.get(path).text, "alert", alert_id)
        assert "assigned · tech" in text, (path, text)
        assert "removed user" not in text, (path, text)


def test_data_use_purposes_and_catalog_words_read_as_words_not_identifiers(
    client: TestClient, world: World
) -> None:
    acme = world.customers["acme"]
    sign_in(client, world, "admin")
    granted = client.post(f"/customers/{acme}/grants/product_improvement", data={"action": "grant"})
    assert "now allows its data to be used for product improvement" in visible(granted.text)
    account = visible(client.get(f"/accounts/{acme}").text)
    assert "Data use allowed for: offers, product improvement, service" in account
    admin = visible(client.get("/admin").text)
    assert "offers, product improvement, service" in admin
    catalog = visible(client.get("/admin/catalog").text)
    assert "segments small, mid, key account" in catalog
    for text in (account, admin, catalog):
        assert "product_improvement" not in text and "key_account" not in text


def test_a_contribution_that_rounds_to_zero_reads_0_00_not_minus_0_00(
    client: TestClient, world: World
) -> None:
    alert_id = world.alerts["acme"][0]
    contributions = [
        {"sensor": "vibration_rms_mm_s", "contribution": 0.4213, "text": "vibration rose"},
        {"sensor": "flow_m3_h", "contribution": -0.0012, "text": "flow fell"},
        {"sensor": "temperature_c", "contribution": -0.1, "text": "temperature fell"},
    ]
    with session(world.engine) as sess:
        alert = sess.get(Alert, alert_id)
        alert.evidence = {**(alert.evidence or {}), "contributions": contributions}
    sign_in(client, world, "tech")
    html = client.get(f"/alerts/{alert_id}").text
    table = re.search(r"<caption>Sensors behind the risk</caption>(.*?)</table>", html, re.S).group(1)
    assert re.findall(r"</th><td>([^<]*)</td>", table) == ["+0.42", "0.00", "-0.10"]


def test_a_mistyped_number_in_an_address_is_explained_without_internal_names(
    client: TestClient, world: World
) -> None:
    sign_in(client, world, "tech")
    answer = client.get("/alerts/4x")
    assert answer.status_code == 400
    detail = re.search(r"<h1>That did not work</h1>\s*<p>(.*?)</p>", answer.text, re.S).group(1)
    assert detail.startswith("alert id: must be a whole number in plain digits"), detail


def test_the_ledger_chart_is_titled_and_says_when_there_is_nothing_to_chart(
    client: TestClient, world: World
) -> None:
    sign_in(client, world, "admin")
    html = client.get("/ledger?start=2026-01-01&end=2026-11-30").text
    figure = re.search(r'<figure class="card" id="ledger-chart">(.*?)</figure>', html, re.S).group(1)
    assert "<svg" not in figure  # no offer won, no failure confirmed: no empty plot
    assert visible(figure).strip() == (
        "Revenue won and downtime avoided per month, EUR "
        "No revenue won and no downtime avoided from 2026-01-01 to 2026-11-30: nothing to chart yet."
    )


def test_an_approval_the_server_refuses_keeps_the_account_managers_edits(
    client: TestClient, world: World
) -> None:
    offer_id = world.offers["acme"][0]
    sign_in(client, world, "am-acme")
    edits = {
        "title": "Bearing kit, fitted this week",
        "price": "0",
        "reason": "We fit the kit at your next stop.",
    }
    offer_page = {"referer": f"http://testserver/offers/{offer_id}"}  # as a browser sends the form
    refused = client.post(f"/offers/{offer_id}/approve", data=edits, headers=offer_page)
    assert refused.status_code == 422
    form = re.search(r'<form[^>]*id="approve-form".*?</form>', refused.text, re.S).group(0)
    assert re.search(r'id="title"[^>]*value="([^"]*)"', form).group(1) == edits["title"]
    assert re.search(r'id="price"[^>]*value="([^"]*)"', form).group(1) == "0"
    assert re.search(r'<textarea id="reason"[^>]*>([^<]*)</textarea>', form).group(1) == edits["reason"]
    assert flash(refused.text) == "price: Input should be greater than 0"
    again = client.get(f"/offers/{offer_id}").text  # nothing was approved, and a fresh page shows the offer
    assert 'id="offer-status"><span class="badge st-proposed">proposed' in again
    assert edits["title"] not in again


def test_a_prediction_names_its_model_by_machine_type_and_training_time_not_its_version_id(
    client: TestClient, world: World
) -> None:
    machine_id, alert_id = world.machines["acme"][0], world.alerts["acme"][0]
    with session(world.engine) as sess:
        version = sess.scalar(select(Prediction.model_version).where(Prediction.machine_id == machine_id))
        sess.add(
            ModelVersion(
                version=version,
                machine_type="centrifugal_pump",
                kind="fleet",
                created_at=datetime(2026, 11, 20, 6, 30, tzinfo=UTC),
                artifact=pickle.dumps(None),
                active=True,
            )
        )
    sign_in(client, world, "cust-acme")
    named = "centrifugal pump model trained 2026-11-20 06:30 UTC"
    machine, alert = client.get(f"/machines/{machine_id}").text, client.get(f"/alerts/{alert_id}").text
    assert version not in visible(machine) and version not in visible(alert)
    shown = re.search(r'<dd id="machine-model">(.*?)</dd>', machine, re.S).group(1)
    assert re.fullmatch(named + r", scored \d{4}-\d\d-\d\d \d\d:\d\d UTC", shown), shown
    assert re.search(r'<dd id="alert-model">(.*?)</dd>', alert, re.S).group(1) == named
    sign_in(client, world, "admin")  # the admin finds that model among the versions by the same time
    row = re.search(rf"<tr>\s*<th scope=\"row\">{version}<.*?</tr>", client.get("/admin").text, re.S).group(0)
    assert "trained 2026-11-20 06:30 UTC" in visible(row)
    trained_on = re.findall(r"<td>(.*?)</td>", row, re.S)[1]
    assert trained_on == "—"  # a version stored without its training window says so once, not '— – —'


def test_the_resolve_form_names_the_alerts_failure_mode_in_words_and_keeps_it_when_left_empty(
    client: TestClient, world: World
) -> None:
    alert_id = world.alerts["acme"][0]
    sign_in(client, world, "tech")
    client.post(f"/alerts/{alert_id}/ack")
    form = re.search(
        r'<form[^>]*id="resolve-form".*?</form>', client.get(f"/alerts/{alert_id}").text, re.S
    ).group(0)
    field = re.search(r'<input id="finding-mode"[^>]*>', form).group(0)
    assert 'placeholder="bearing wear"' in field and 'value=""' in field, field
    assert "bearing_wear" not in form
    client.post(f"/alerts/{alert_id}/resolve", data={"finding": "confirmed_fault", "mode": ""})
    with session(world.engine) as sess:
        label = sess.scalar(select(Label).where(Label.ref == f"alert:{alert_id}"))
    assert (label.kind, label.mode) == ("failure", "bearing_wear")  # the alert's mode, as before
