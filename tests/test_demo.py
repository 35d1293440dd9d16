"""`servicecast demo`, as a newcomer runs it after `make demo`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.alerts import OPEN_STATES
from benchmarks import demo_offers
from fleet import registry, subprocesses
from fleet.db import make_engine
from fleet.settings import Settings, get_settings
from fleet.tables import (
    Alert,
    Customer,
    Machine,
    MachineEvent,
    ModelVersion,
    Offer,
    Prediction,
    Quarantine,
    Telemetry,
    User,
)
from ingest import contract
from ingest.schemas import Rejection
from models import versions as model_versions
from servicecast import demo_fleet, screenshots
from servicecast.cli import app
from servicecast.demo_fleet import CUSTOMERS
from tests.api.support import add_prediction
from tests.ingest.support import wait_until
from tests.services import free_port, wait_port

PINNED_NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
# The demo's two start hours of 2026-12-06 with the fewest offers on alerts before it scored all but its last
# live hour first and made its fleet busier (docs/benchmarks.md, `python -m benchmarks.demo_offers`).
WEAKEST_STARTS = (datetime(2026, 12, 6, 21, tzinfo=UTC), datetime(2026, 12, 6, 22, tzinfo=UTC))
# Two thirds of the default demo's history, trained in about two thirds of the time (before: no alert then).
DEMO_OFFERS_SIZE = {
    "SERVICECAST_DEMO_MACHINES": "200",
    "SERVICECAST_DEMO_DAYS": "20",
    "SERVICECAST_DEMO_LIVE_HOURS": "6",
}
TINY = {"SERVICECAST_DEMO_MACHINES": "5", "SERVICECAST_DEMO_DAYS": "0.5", "SERVICECAST_DEMO_LIVE_HOURS": "3"}


def _demo(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> str:
    """Run `servicecast demo --no-serve` in-process with these settings; returns its output."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    return result.output


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    tables = {
        "telemetry": Telemetry,
        "machines": Machine,
        "quarantined": Quarantine,
        "users": User,
        "customers": Customer,
        "models": ModelVersion,
        "predictions": Prediction,
    }
    press = select(Machine.id).where(Machine.code == "press-7").scalar_subquery()
    with engine.connect() as conn:
        counts = {name: conn.scalar(select(func.count()).select_from(t)) for name, t in tables.items()}
        # The OPC UA machine, bridged in-process from its simulated server (servicecast/demo_opcua.py).
        counts["press_telemetry"] = conn.scalar(select(func.count()).where(Telemetry.machine_id == press))
        counts["press_events"] = conn.scalar(select(func.count()).where(MachineEvent.machine_id == press))
    engine.dispose()
    return counts


def test_the_demo_fleet_stamps_no_live_reading_after_now():
    # On the hour the nominal last step is now itself; this fleet has a device clock 28 min fast (a simulated
    # clock-skew fault) over its last steps: its readings were stamped after now and quarantined as
    # bad_timestamp, or not, by the minute the demo started.
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    settings = Settings(
        demo_machines=150, demo_days=1, demo_step_s=3600, demo_live_hours=6, ingest_future_margin_s=300
    )
    fleet = demo_fleet.plan(settings, now=now)
    config, limits = fleet.run.config, contract.Limits.from_settings(settings)
    step = timedelta(seconds=config.step_seconds)
    refused, ahead = [], []
    for message in fleet.live_messages():
        if message.valid:
            raw = json.loads(message.payload)["ts"]
            if type(contract.parse_ts(raw, limits, contract.latest_accepted(now, limits))) is Rejection:
                refused.append((message.machine, raw))
            if datetime.fromisoformat(raw) - (config.start + (message.seq - 1) * step) > limits.future_margin:
                ahead.append(message.machine)
    assert ahead  # the fleet still shows the fault live
    assert refused == []


def test_tiny_demo_backfills_trains_publishes_live_and_hands_out_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    output = _demo(monkeypatch, {"SERVICECAST_DATABASE_URL": url, **TINY})
    counts = _counts(url)
    assert "embedded MQTT broker (amqtt)" in output
    assert "history: 5 machines of 4 customers over 0.5 days, a message every 1 h: 60 rows" in output
    assert "types: centrifugal_pump v1, air_compressor v1, cnc_spindle v1" in output  # as `types apply`
    # 12 hourly steps backfilled, then 3 published live through the broker and ingested
    # and beside them acme/press-7 over OPC UA: its initial values, 40 changes, identification and an alarm
    assert (counts["machines"], counts["telemetry"]) == (5 + 1, 5 * 15 + counts["press_telemetry"])
    assert counts["press_telemetry"] >= 40 and counts["press_events"] == 3
    assert "OPC UA: acme/press-7 bridged from opc.tcp://127.0.0.1:" in output
    assert f"live: published 15 messages (+{counts['quarantined']} deliberately bad)" in output
    bridged = counts["press_telemetry"] + counts["press_events"]
    assert "ingested" in output and f"{15 + bridged} stored, 0 duplicates" in output
    assert counts["customers"] == len(CUSTOMERS)
    assert counts["models"] == 3 and counts["predictions"] == 2 * 5  # the history's end, then the live end
    keys = (tmp_path / "var" / "demo-keys.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in keys] == ["demo-admin", "demo-tech", "demo-am", "demo-customer"]
    assert oct((tmp_path / "var" / "demo-keys.txt").stat().st_mode)[-3:] == "600"
    assert "(--no-serve: not serving" in output


def test_rerun_rebuilds_the_default_database_and_reuses_a_configured_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = tmp_path / "var" / "servicecast.db"
    url = f"sqlite:///{default}"
    first = _demo(monkeypatch, TINY)
    assert "(new for this run)" in first
    engine = make_engine(url)
    registry.add_customer(engine=engine, tenant="left-over")
    engine.dispose()
    before = _counts(url)

    second = _demo(monkeypatch, TINY)  # default database: rebuilt, the left-over customer is gone
    assert "(new for this run)" in second
    assert _counts(url) == before | {"customers": before["customers"] - 1}

    engine = make_engine(url)
    registry.add_customer(engine=engine, tenant="kept")
    engine.dispose()
    third = _demo(monkeypatch, {"SERVICECAST_DATABASE_URL": url, **TINY})  # configured: never deleted
    assert "(new for this run)" not in third
    assert "holds telemetry already; reusing it" in third
    assert "models: reusing the active versions" in third
    after = _counts(url)
    # The fleet's replayed steps are duplicates; the OPC UA press's new shift is new data (new seqs).
    bridged = sum(after[k] - before[k] for k in ("press_telemetry", "press_events"))
    assert bridged > 40 and f"{bridged} stored, 15 duplicates" in third
    assert after["telemetry"] - after["press_telemetry"] == before["telemetry"] - before["press_telemetry"]
    same = ("machines", "users", "customers", "models", "predictions")
    assert {k: after[k] for k in same} == {k: before[k] for k in same}  # "kept" replaced "left-over"
    engine = make_engine(url)
    assert "kept" in {c.tenant for c in registry.list_customers(engine=engine)}
    engine.dispose()
    assert after["users"] == 4
    keys = dict(line.split("\t") for line in (tmp_path / "var" / "demo-keys.txt").read_text().splitlines())
    assert set(keys) == {"demo-admin", "demo-tech", "demo-am", "demo-customer"}


@pytest.mark.slow
def test_populated_demo_has_models_predictions_alerts_and_offers_only_where_granted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The simulated history ends at the current hour; pin the demo's clock so the fleet is the same every run.
    monkeypatch.setattr("servicecast.demo.utcnow", lambda: PINNED_NOW)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {
        "SERVICECAST_DEMO_MACHINES": "100",
        "SERVICECAST_DEMO_DAYS": "10",
        "SERVICECAST_DEMO_LIVE_HOURS": "6",
    }
    output = _demo(monkeypatch, {"SERVICECAST_DATABASE_URL": url, **env})
    assert "models: 3 trained and activated" in output
    engine = make_engine(url)
    with engine.connect() as conn:
        active = conn.execute(select(ModelVersion.machine_type).where(ModelVersion.active)).scalars().all()
        recorded = conn.execute(select(ModelVersion.version, ModelVersion.params)).all()
        predictions = conn.scalar(select(func.count()).select_from(Prediction))
        tenants = dict(conn.execute(select(Customer.tenant, Customer.id)).all())
        open_alerts = dict(
            conn.execute(
                select(Alert.customer_id, func.count())
                .where(Alert.status.in_(OPEN_STATES))  # the demo's technician took the critical ones
                .group_by(Alert.customer_id)
            ).all()
        )
        proposed = dict(
            conn.execute(
                select(Offer.customer_id, func.count())
                .where(Offer.status == "proposed")
                .group_by(Offer.customer_id)
            ).all()
        )
    granted = {t: "offers" in registry.active_purposes(engine=engine, tenant=t) for t in tenants}
    for version, params in recorded:  # the limits beside the artifact are the model's own
        assert params["trend_limits"] == model_versions.load(engine, version).trend_.limits_
    engine.dispose()
    assert sorted(active) == ["air_compressor", "centrifugal_pump", "cnc_spindle"]
    assert predictions == 2 * 100  # the history's last hour, then the live end
    assert sum(open_alerts.values()) >= 1
    assert granted == {tenant: offers for tenant, _, offers, _ in CUSTOMERS}
    assert "of 3 customers that grant product_improvement; left out" in output  # umbrella's machines
    # the account manager looks after every account: acme, globex and umbrella allow offers, initech does not
    offering = {tenants[tenant] for tenant, allowed in granted.items() if allowed}
    assert sum(proposed.get(customer, 0) for customer in offering) >= 1
    assert open_alerts.get(tenants["initech"], 0) >= 1, "initech needs risky machines for the check below"
    assert proposed.get(tenants["initech"], 0) == 0
    assert screenshots.offer_on_an_alert(url)["customer"] in offering
    assert f"{sum(proposed.values())} proposed offers" in output


@pytest.mark.slow
@pytest.mark.parametrize("now", WEAKEST_STARTS, ids=lambda now: f"{now:%H}h")
def test_the_demo_offers_on_alerts_of_several_granting_accounts_and_none_of_initech(
    tmp_path, monkeypatch, now
):
    for name, value in DEMO_OFFERS_SIZE.items():
        monkeypatch.setenv(name, value)
    sales = demo_offers.run_hour(now, tmp_path)
    assert len(sales.granting_accounts_offered()) >= 2, sales
    assert len(sales.machines_offered) >= 3, sales
    assert sales.why_not["consent"] >= 1, "initech needs an alert for the check below to mean anything"
    assert sales.offers["initech"] == 0


def test_demo_serves_the_app_until_interrupted(tmp_path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")},
        "SERVICECAST_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "SERVICECAST_DEMO_MACHINES": "3",
        "SERVICECAST_DEMO_DAYS": "0.25",
        "SERVICECAST_DEMO_LIVE_HOURS": "2",
        "SERVICECAST_API_PORT": str(port),
    }
    demo = subprocesses.popen(
        [sys.executable, "-m", "servicecast", "demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_port(port, timeout=120)
        keys = dict(
            line.split("\t") for line in (tmp_path / "var" / "demo-keys.txt").read_text().splitlines()
        )
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, 30, "readiness")
        tech = {"Authorization": f"Bearer {keys['demo-tech']}"}
        machines = httpx.get(f"{base}/api/v1/machines", headers=tech).json()
        assert len(machines) == 3 + 1  # and acme/press-7, bridged over OPC UA
        assert "press-7" in {m["code"] for m in machines}
        # While it serves, the demo's policy loop turns a new prediction into an alert.
        engine = make_engine(env["SERVICECAST_DATABASE_URL"])
        add_prediction(engine, machines[0]["id"], risk=0.97, mode="demo_check", hours_ahead=30)
        engine.dispose()
        wait_until(
            lambda: any(
                a["failure_mode"] == "demo_check"
                for a in httpx.get(f"{base}/api/v1/alerts", headers=tech).json()
            ),
            30,
            "the alert from the demo's policy loop",
        )
        assert httpx.get(f"{base}/api/v1/offers", headers=tech).status_code == 403
        am = {"Authorization": f"Bearer {keys['demo-am']}"}
        assert httpx.get(f"{base}/api/v1/offers", headers=am).status_code == 200
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0
        output = demo.stdout.read()
        assert f"console: {base}/" in output
        assert keys["demo-tech"] in output and keys["demo-customer"] in output
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
