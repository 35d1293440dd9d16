"""Findings teach the model: a resolved alert's finding becomes a label that the next training reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select

from api import policy
from api.app import API_PREFIX
from fleet import audit, labels
from fleet.db import session
from fleet.tables import Alert, Telemetry
from models.labels import make_targets, within
from models.training import train_from_store
from tests.api.support import add_prediction, build_world
from tests.models.findings_support import backfilled_world, labelled_rows, pooled_pump_without_labels
from tests.models.fleet_support import FAST, PUMP

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_a_no_fault_finding_makes_the_censored_rows_before_it_known_negatives():
    ts = pd.date_range(T0, periods=48, freq="h")
    panel = pd.DataFrame({"machine": ["a"] * 48 + ["b"] * 48, "ts": list(ts) * 2})
    failures = pd.DataFrame(
        {"machine": ["b"], "ts": [ts[40]], "mode": ["seal_leak"], "has_precursor": [True]}
    )
    no_faults = pd.DataFrame({"machine": ["a", "b"], "ts": [ts[30], ts[47]]})
    before = within(make_targets(panel, failures), 24)
    after = within(make_targets(panel, failures, no_faults=no_faults), 24)
    # a: rows 6..30 lie within 24 h before the finding; rows after 23 were censored (the data ends at 47).
    gained = after[1] & ~before[1]
    assert list(np.flatnonzero(gained[:48])) == list(range(24, 31))
    # b: rows 16..40 are positive (the failure at 40 wins over the later finding); 41..47 become known.
    assert list(np.flatnonzero(gained[48:])) == list(range(41, 48))
    assert (after[0] == before[0]).all()
    # A backtest up to `until` does not see a finding after it.
    hidden = within(make_targets(panel, failures, no_faults=no_faults, until=ts[29]), 24)
    assert not (hidden[1] & (panel["machine"] == "a").to_numpy() & (panel["ts"] > ts[5]).to_numpy()).any()


def test_a_finding_through_the_api_becomes_a_label_that_the_next_training_reads(database_url):
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    world = backfilled_world(database_url, now)
    operator = audit.Operator("cli:test")
    first = train_from_store(world.engine, machine_type=PUMP, by=operator, **FAST)
    horizon = timedelta(hours=168)
    machine = pooled_pump_without_labels(world.engine, now - 2 * horizon, now)
    add_prediction(world.engine, machine, risk=0.9, mode="seal_leak", hours_ahead=48)
    policy.run_once(engine=world.engine, settings=world.settings, now=now)
    with session(world.engine) as sess:
        alert_id = sess.scalar(select(Alert.id).where(Alert.machine_id == machine))
    tech = world.headers("tech")
    with world.client() as client:
        client.post(f"{API_PREFIX}/alerts/{alert_id}/ack", headers=tech).raise_for_status()
        resolved = client.post(
            f"{API_PREFIX}/alerts/{alert_id}/resolve", json={"finding": "no_fault_found"}, headers=tech
        )
    assert resolved.status_code == 200, resolved.text
    with world.engine.connect() as conn:
        found = labels.read(conn, ref=f"alert:{alert_id}")
        at = found["ts"].iloc[0].to_pydatetime()
        window = conn.execute(
            select(Telemetry.ts).where(Telemetry.machine_id == machine, Telemetry.ts >= at - horizon)
        ).all()
    assert found[["kind", "source", "mode", "component"]].to_dict("records") == [
        {"kind": "no_fault", "source": "finding", "mode": "seal_leak", "component": ""}
    ]

    second = train_from_store(world.engine, machine_type=PUMP, by=operator, **FAST)

    before, after = labelled_rows(world.engine, first, second)
    # The machine's rows within the horizon before the finding were censored (the data ends there); the
    # finding makes each of them a known negative, and nothing else changes.
    assert len(window) > 100
    assert after == {"positive": before["positive"], "negative": before["negative"] + len(window)}


def test_confirmed_and_replaced_findings_become_positive_labels_and_other_none(database_url):
    world = build_world(database_url)
    tech = world.headers("tech")
    findings = [
        ("acme", {"finding": "confirmed_fault", "component": "bearing", "mode": "bearing_wear"}),
        ("globex", {"finding": "replaced_before_failure", "component": "seal"}),
    ]
    with world.client() as client:
        for tenant, body in findings:
            alert_id = world.alerts[tenant][0]
            client.post(f"{API_PREFIX}/alerts/{alert_id}/ack", headers=tech).raise_for_status()
            client.post(f"{API_PREFIX}/alerts/{alert_id}/resolve", json=body, headers=tech).raise_for_status()
        ledger = client.get(f"{API_PREFIX}/ledger", headers=world.headers("admin")).json()
    # A worn part replaced before it failed is an alert that was right, as a confirmed failure is.
    assert [(r["model_version"], r["resolved"], r["confirmed"]) for r in ledger] == [("test-1", 2, 2)]
    with world.engine.connect() as conn:
        stored = labels.read(conn)
    records = stored[["kind", "component", "mode", "source"]].to_dict("records")
    assert sorted(records, key=lambda r: r["kind"]) == [
        {"kind": "failure", "component": "bearing", "mode": "bearing_wear", "source": "finding"},
        {"kind": "replacement", "component": "seal", "mode": "bearing_wear", "source": "finding"},
    ]
    assert sorted(stored["ref"]) == sorted(f"alert:{world.alerts[t][0]}" for t in ("acme", "globex"))


def test_the_console_resolve_form_records_a_replaced_part_as_a_label(database_url):
    from api.app import create_app
    from tests.console.client import ConsoleClient, flash, sign_in

    world = build_world(database_url)
    alert_id = world.alerts["acme"][0]
    page = f"/alerts/{alert_id}"
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "tech")
        client.post(f"{page}/ack", headers={"referer": f"http://testserver{page}"})
        form = client.get(page).text
        assert 'value="replaced_before_failure"' in form and 'name="component"' in form
        done = client.post(
            f"{page}/resolve",
            data={"finding": "replaced_before_failure", "component": "impeller", "mode": "seal_leak"},
            headers={"referer": f"http://testserver{page}"},
        )
        assert "resolved" in flash(done.text)
    with world.engine.connect() as conn:
        stored = labels.read(conn, ref=f"alert:{alert_id}")
    assert stored[["kind", "component", "mode", "source"]].to_dict("records") == [
        {"kind": "replacement", "component": "impeller", "mode": "seal_leak", "source": "finding"}
    ]
