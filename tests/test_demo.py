"""`servicecast demo`, as a newcomer runs it after `make demo`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
from sqlalchemy import func, select
from typer.testing import CliRunner

from fleet.db import make_engine
from fleet.tables import Machine, Quarantine, Telemetry
from servicecast.cli import app
from tests.ingest.support import wait_until
from tests.services import free_port, wait_port


def test_demo_ingests_a_simulated_fleet_and_hands_out_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    monkeypatch.setenv("SERVICECAST_DEMO_MACHINES", "5")
    monkeypatch.setenv("SERVICECAST_DEMO_DAYS", "0.5")
    result = CliRunner().invoke(app, ["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "embedded MQTT broker (amqtt)" in result.output
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    with engine.connect() as conn:
        rows = conn.scalar(select(func.count()).select_from(Telemetry))
        machines = conn.scalar(select(func.count()).select_from(Machine))
        quarantined = conn.scalar(select(func.count()).select_from(Quarantine))
    engine.dispose()
    assert (machines, rows) == (5, 5 * 72)
    assert f"published {rows} messages (+{quarantined} deliberately bad)" in result.output
    keys = (tmp_path / "var" / "demo-keys.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in keys] == ["demo-admin", "demo-tech", "demo-am", "demo-customer"]
    assert oct((tmp_path / "var" / "demo-keys.txt").stat().st_mode)[-3:] == "600"


def test_demo_serves_the_api_until_interrupted(tmp_path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")},
        "SERVICECAST_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "SERVICECAST_DEMO_MACHINES": "3",
        "SERVICECAST_DEMO_DAYS": "0.25",
        "SERVICECAST_API_PORT": str(port),
    }
    demo = subprocess.Popen(
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
        headers = {"Authorization": f"Bearer {keys['demo-tech']}"}
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200, 30, "readiness")
        machines = httpx.get(f"http://127.0.0.1:{port}/api/v1/machines", headers=headers).json()
        assert len(machines) == 3
        denied = httpx.get(f"http://127.0.0.1:{port}/api/v1/offers", headers=headers)
        assert denied.status_code == 403
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
