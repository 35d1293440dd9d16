"""`servicecast api` as an operator starts it: the policy runs only where it was asked to."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fleet.db import session
from fleet.tables import Alert
from tests.api.support import add_prediction, build_world
from tests.services import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("flag", "alerts_after"), [("--no-policy", 0), ("--policy", 1)])
def test_the_policy_flag_decides_whether_one_worker_turns_predictions_into_alerts(
    tmp_path: Path, flag: str, alerts_after: int
) -> None:
    database_url = f"sqlite:///{tmp_path / 'api.db'}"
    world = build_world(database_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    # The environment asks for the policy; the flag must win over it.
    env.update(
        SERVICECAST_DATABASE_URL=database_url,
        SERVICECAST_API_PORT=str(port),
        SERVICECAST_API_RUN_POLICY="true",
    )
    server = subprocess.Popen([sys.executable, "-m", "servicecast", "api", flag], env=env, cwd=ROOT)
    try:
        wait_port(port, timeout=60)
        with session(world.engine) as sess:
            before = sess.scalar(select(func.count()).select_from(Alert))
        add_prediction(world.engine, world.machines["acme"][2], risk=0.95, mode="seal_leak", hours_ahead=20)
        deadline = time.monotonic() + 8  # the policy loop polls every 2 s
        new = 0
        while time.monotonic() < deadline and new < 1:
            time.sleep(0.2)
            with session(world.engine) as sess:
                new = sess.scalar(select(func.count()).select_from(Alert)) - before
        assert new == alerts_after
    finally:
        server.terminate()
        server.wait(15)
        world.engine.dispose()
