"""`servicecast api` serves HTTP only; `servicecast policy` beside it makes alerts and offers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fleet import subprocesses
from fleet.settings import get_settings
from servicecast.cli import app
from tests.api.support import add_prediction, build_world
from tests.api.test_serve import worker_pids
from tests.ingest.support import START_S, wait_until
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
# Fresh connections, so that the kernel hands the requests to both workers.
READS_PER_CHECK = 6


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    return env | {"SERVICECAST_DATABASE_URL": database_url, **extra}


def _machines_listed(base: str, path: str, token: str) -> list[set[int]]:
    """The machine ids in `path`'s list, once per new connection."""
    headers = {"Authorization": f"Bearer {token}"}
    seen = []
    for _ in range(READS_PER_CHECK):
        response = httpx.get(f"{base}/api/v1/{path}", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        seen.append({row["machine_id"] for row in response.json()})
    return seen


def test_policy_process_beside_two_api_workers_makes_alerts_and_offers_seen_over_http(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'api.db'}"
    world = build_world(database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = subprocesses.popen(
        [sys.executable, "-m", "servicecast", "api"],
        env=_env(database_url, SERVICECAST_API_PORT=str(port), SERVICECAST_API_WORKERS="2"),
        cwd=ROOT,
    )
    policy = None
    try:
        wait_until(lambda: len(worker_pids(port)) == 2, START_S, "two API workers")
        machine = world.machines["globex"][2]
        add_prediction(world.engine, machine, risk=0.75, hours_ahead=240)
        time.sleep(3)  # longer than a policy pass takes to poll (2 s): the API itself runs none
        assert not any(machine in seen for seen in _machines_listed(base, "alerts", world.tokens["tech"]))

        policy = subprocesses.popen(
            [sys.executable, "-m", "servicecast", "policy", "--poll", "0.2"],
            env=_env(database_url),
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(
            lambda: all(machine in seen for seen in _machines_listed(base, "alerts", world.tokens["tech"])),
            START_S,  # the policy process's start and first pass: past 30 s on a loaded machine
            "the new alert from both workers",
        )
        offers = _machines_listed(base, "offers", world.tokens["am-globex"])
        assert all(machine in seen for seen in offers), offers

        policy.send_signal(signal.SIGTERM)
        assert policy.wait(timeout=60) == 0  # a guard: its stop is one poll away, on a loaded machine too
        assert "policy stopped" in policy.stderr.read()
    finally:
        for process in (policy, api):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
        world.engine.dispose()


def test_policy_once_processes_waiting_predictions_and_prints_a_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_url = f"sqlite:///{tmp_path / 'api.db'}"
    world = build_world(database_url)
    add_prediction(world.engine, world.machines["acme"][2], risk=0.75, hours_ahead=240)
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        first = CliRunner().invoke(app, ["policy", "--once"])
        again = CliRunner().invoke(app, ["policy", "--once"])
    finally:
        get_settings.cache_clear()
        world.engine.dispose()
    assert first.exit_code == 0, first.output
    assert first.output.startswith("1 prediction: 1 alert opened or updated, 1 offer proposed")
    assert again.output.startswith("0 predictions: 0 alerts opened or updated, 0 offers proposed")
