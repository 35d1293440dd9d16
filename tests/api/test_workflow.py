"""Alerts and offers as field service and account managers live them, through the HTTP API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from api import policy
from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import Alert, Offer, OutboxMessage, Prediction, WorkflowEvent
from tests.api.support import NOW, add_prediction, build_world


@pytest.fixture
def world(database_url):
    return build_world(database_url, alert_escalate_after_min=30, webhook_url="http://127.0.0.1:9/hook")


def count(engine, model, *where) -> int:
    """Rows of a table matching the conditions."""
    with session(engine) as sess:
        return sess.scalar(select(func.count()).select_from(model).where(*where))


def test_hundred_risky_predictions_make_one_alert_with_count_100(world):
    machine = world.machines["acme"][2]
    for _ in range(100):
        add_prediction(world.engine, machine, risk=0.85, mode="seal_leak", hours_ahead=200)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)  # a second pass adds nothing
    with session(world.engine) as sess:
        alerts = sess.scalars(
            select(Alert).where(Alert.machine_id == machine, Alert.failure_mode == "seal_leak")
        ).all()
    assert len(alerts) == 1
    assert alerts[0].count == 100 and alerts[0].status == "open"
    assert alerts[0].evidence["explanation"] == "vibration rose 40 % in 3 days"


def test_low_risk_and_insufficient_data_make_no_alert(world):
    machine = world.machines["globex"][2]
    add_prediction(world.engine, machine, risk=0.2)
    # As the scorer writes it (no risk), and with a risk that alone would open an alert and an offer.
    for risk in (None, 0.95):
        stale = add_prediction(world.engine, machine, risk=0.95, mode="seal_leak", hours_ahead=200)
        with session(world.engine) as sess:
            row = sess.get(Prediction, stale)
            row.status, row.risk = "insufficient_data", risk
    report = policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    assert report.predictions == 3
    assert count(world.engine, Alert, Alert.machine_id == machine) == 0
    assert world_offer_ids(world, machine) == []


def test_unacknowledged_critical_alert_escalates_after_the_configured_time(world):
    critical = world.alerts["acme"][0]
    report = policy.run_once(engine=world.engine, settings=world.settings, now=NOW + timedelta(minutes=29))
    assert report.escalated == 0
    with world.client() as client:
        client.post(f"{API_PREFIX}/alerts/{world.alerts['globex'][0]}/ack", headers=world.headers("tech"))
    report = policy.run_once(engine=world.engine, settings=world.settings, now=NOW + timedelta(minutes=31))
    with session(world.engine) as sess:
        escalated = sess.scalars(select(Alert.id).where(Alert.escalated_at.is_not(None))).all()
    assert escalated == [critical], "only the unacknowledged critical alert escalates"
    assert report.escalated == 1


def test_field_service_acknowledges_assigns_and_resolves_with_a_finding(world):
    alert_id = world.alerts["acme"][0]
    tech = world.headers("tech")
    with world.client() as client:
        listed = client.get(f"{API_PREFIX}/alerts", headers=tech).json()
        assert listed[0]["severity"] == "critical", "the queue starts with the most severe"
        early = client.post(
            f"{API_PREFIX}/alerts/{alert_id}/resolve", json={"finding": "no_fault_found"}, headers=tech
        )
        assert early.status_code == 409
        assert (
            client.post(f"{API_PREFIX}/alerts/{alert_id}/ack", headers=tech).json()["status"]
            == "acknowledged"
        )
        assert client.post(f"{API_PREFIX}/alerts/{alert_id}/ack", headers=tech).status_code == 409
        bad_assignee = client.post(
            f"{API_PREFIX}/alerts/{alert_id}/assign",
            json={"assignee_id": world.users["cust-acme"]},
            headers=tech,
        )
        assert bad_assignee.status_code == 409
        assigned = client.post(
            f"{API_PREFIX}/alerts/{alert_id}/assign", json={"assignee_id": world.users["tech"]}, headers=tech
        )
        assert assigned.json()["status"] == "assigned"
        other_without_text = client.post(
            f"{API_PREFIX}/alerts/{alert_id}/resolve", json={"finding": "other"}, headers=tech
        )
        assert other_without_text.status_code == 422
        resolved = client.post(
            f"{API_PREFIX}/alerts/{alert_id}/resolve",
            json={"finding": "confirmed_fault", "parts_used": ["bearing 6205-2RS"]},
            headers=tech,
        ).json()
        assert (resolved["status"], resolved["finding"], resolved["parts_used"]) == (
            "resolved",
            "confirmed_fault",
            ["bearing 6205-2RS"],
        )
        ledger = client.get(f"{API_PREFIX}/ledger", headers=world.headers("admin")).json()
    assert ledger[0]["model_version"] == "test-1" and ledger[0]["confirmed"] == 1
    with session(world.engine) as sess:
        actions = sess.scalars(
            select(WorkflowEvent.action).where(
                WorkflowEvent.subject == "alert", WorkflowEvent.subject_id == alert_id
            )
        ).all()
    assert actions == ["opened", "acknowledged", "assigned", "resolved"]


def test_consent_gate_no_grant_no_offer_then_grant_then_revoke(world):
    admin = world.headers("admin")
    acme, machine = world.customers["acme"], world.machines["acme"][2]
    with world.client() as client:
        client.delete(f"{API_PREFIX}/customers/{acme}/grants/offers", headers=admin)
        assert client.get(f"{API_PREFIX}/customers/{acme}", headers=admin).json()["purposes"] == ["service"]
        # Revoking withdrew acme's proposed offer: it can no longer be approved or sent.
        first = world.offers["acme"][0]
        assert client.get(f"{API_PREFIX}/offers/{first}", headers=admin).json()["status"] == "withdrawn"
        add_prediction(world.engine, machine, risk=0.75, mode="seal_leak", hours_ahead=300)
        policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
        assert count(world.engine, Alert, Alert.machine_id == machine) == 1
        assert count(world.engine, Offer, Offer.machine_id == machine) == 0

        client.put(f"{API_PREFIX}/customers/{acme}/grants/offers", headers=admin)
        add_prediction(world.engine, machine, risk=0.76, mode="seal_leak", hours_ahead=300)
        policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
        offer_ids = world_offer_ids(world, machine)
        assert len(offer_ids) == 1
        approved = client.post(
            f"{API_PREFIX}/offers/{offer_ids[0]}/approve",
            json={"price": 2100.0},
            headers=world.headers("am-acme"),
        )
        assert approved.status_code == 200 and approved.json()["price"] == 2100.0
        assert count(world.engine, OutboxMessage, OutboxMessage.offer_id == offer_ids[0]) == 1

        client.delete(f"{API_PREFIX}/customers/{acme}/grants/offers", headers=admin)
        assert (
            client.get(f"{API_PREFIX}/offers/{offer_ids[0]}", headers=admin).json()["status"] == "withdrawn"
        )
    assert count(world.engine, OutboxMessage, OutboxMessage.customer_id == world.customers["globex"]) == 0


def world_offer_ids(world, machine_id: int) -> list[int]:
    """Offer ids of a machine."""
    with session(world.engine) as sess:
        return list(sess.scalars(select(Offer.id).where(Offer.machine_id == machine_id)))


def real_contacts(world, tenant: str, *, offers_sent: int, visits: int) -> None:
    """Offers delivered to the customer and technicians' visits (alerts resolved with a finding) within the
    last days."""
    customer_id = world.customers[tenant]
    with session(world.engine) as sess:
        offer_ids = list(sess.scalars(select(Offer.id).where(Offer.customer_id == customer_id)))[:offers_sent]
        for offer_id in offer_ids:
            sess.add(
                OutboxMessage(
                    event_id=f"offer-{offer_id}-approved",
                    event_type="com.servicecast.offer.approved",
                    destination="webhook",
                    customer_id=customer_id,
                    offer_id=offer_id,
                    payload={},
                    status="delivered",
                    delivered_at=NOW - timedelta(days=2),
                )
            )
        alerts = sess.scalars(select(Alert).where(Alert.customer_id == customer_id)).all()[:visits]
        for alert in alerts:
            alert.resolved_at, alert.finding = NOW - timedelta(days=1), "confirmed_fault"


def test_offer_gates_duplicates_service_first_and_weekly_limit(world):
    machine = world.machines["acme"][1]  # already has a live offer for bearing wear
    add_prediction(world.engine, machine, risk=0.78, hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    assert len(world_offer_ids(world, machine)) == 1, "no duplicate offer for the same machine and need"
    critical_machine = world.machines["globex"][0]
    add_prediction(world.engine, critical_machine, risk=0.72, mode="seal_leak", hours_ahead=400)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    assert world_offer_ids(world, critical_machine) == [], "service first: its critical alert is unassigned"

    # Proposals are no contacts: two more offers for acme on another machine are proposed.
    other = world.machines["acme"][2]
    add_prediction(world.engine, other, risk=0.75, mode="bearing_wear", hours_ahead=240)
    add_prediction(world.engine, other, risk=0.65, mode="overheating", hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    assert len(world_offer_ids(world, other)) == 2
    assert count(world.engine, Offer, Offer.customer_id == world.customers["acme"]) == 3
    # Three real contacts in 7 days (two offers delivered, one technician's visit) reach acme's limit of 3.
    real_contacts(world, "acme", offers_sent=2, visits=1)
    add_prediction(world.engine, machine, risk=0.55, mode="overheating", hours_ahead=240)  # an inspection
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    assert len(world_offer_ids(world, machine)) == 1, "the offer after the third contact in a week waits"
    assert count(world.engine, Offer, Offer.customer_id == world.customers["globex"]) == 1  # per account
    # The same prediction passes every other gate: with room for a fourth, it becomes an offer.
    add_prediction(world.engine, machine, risk=0.55, mode="overheating", hours_ahead=240)
    roomier = world.settings.model_copy(update={"offers_per_account_per_week": 4})
    policy.run_once(engine=world.engine, settings=roomier, now=NOW)
    assert len(world_offer_ids(world, machine)) == 2


def test_account_manager_approves_edits_rejects_and_records_the_outcome(world):
    am = world.headers("am-acme")
    offer_id = world.offers["acme"][0]
    with world.client() as client:
        inbox = client.get(f"{API_PREFIX}/offers?status=proposed", headers=am).json()
        assert [o["id"] for o in inbox] == [offer_id]
        assert "risk of failure" in inbox[0]["reason"] and inbox[0]["expected_value"] > 0
        done = client.post(
            f"{API_PREFIX}/offers/{offer_id}/approve", json={"title": "Bearing swap"}, headers=am
        )
        assert (done.json()["status"], done.json()["title"]) == ("approved", "Bearing swap")
        assert (
            client.post(
                f"{API_PREFIX}/offers/{offer_id}/reject", json={"reason": "x"}, headers=am
            ).status_code
            == 409
        )
        outcome = client.post(
            f"{API_PREFIX}/offers/{offer_id}/outcome", json={"accepted": True, "revenue": 2400}, headers=am
        )
        assert outcome.json()["status"] == "accepted" and outcome.json()["revenue"] == 2400
        globex_offer = world.offers["globex"][0]
        rejected = client.post(
            f"{API_PREFIX}/offers/{globex_offer}/reject",
            json={"reason": "customer on holiday"},
            headers=world.headers("am-globex"),
        )
        assert rejected.json()["status"] == "rejected"
        ledger = client.get(f"{API_PREFIX}/ledger", headers=world.headers("admin")).json()
    assert ledger[0]["revenue"] == 2400 and ledger[0]["accepted"] == 1
