"""The README's "Onboarding a fleet" walkthrough runs as written, from an empty folder to an alert."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleet import subprocesses

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> str:
    """The shell blocks of the section, in order, as one script."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Onboarding a fleet\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, flags=re.S))


def _stored_reading(db: Path) -> bool:
    with sqlite3.connect(db) as conn:
        return bool(conn.execute("SELECT 1 FROM telemetry WHERE ts LIKE '2026-02-01%'").fetchall())


@pytest.mark.slow
def test_the_onboarding_walkthrough_runs_and_opens_a_cold_start_alert(tmp_path: Path, mosquitto) -> None:
    script = walkthrough()
    assert script.count("servicecast ") >= 12 and "mosquitto_pub" in script
    # Only the broker's port: the walkthrough itself says which broker the ingester uses.
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MQTT_PORT": str(mosquitto.port),
    }
    env.pop("SERVICECAST_DATABASE_URL", None)
    env.pop("SERVICECAST_MQTT_URL", None)
    proc = subprocesses.popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the walkthrough leaves the ingester running, as a service would
    )
    try:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
        deadline = time.monotonic() + 120  # a wait for the ingester, not a timing assertion
        while not _stored_reading(tmp_path / "fleet.db") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _stored_reading(tmp_path / "fleet.db"), (tmp_path / "ingest.log").read_text()
        # "Then run `servicecast score`": its first pass after the live message.
        scored = subprocess.run(
            [sys.executable, "-m", "servicecast", "score", "--once"],
            cwd=tmp_path,
            env={**env, "SERVICECAST_DATABASE_URL": f"sqlite:///{tmp_path / 'fleet.db'}"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert scored.returncode == 0, scored.stderr
        assert "scored 1 machines" in scored.stdout
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    assert "imported 2 new labels" in out
    assert "cold start (too few failure labels: 1 of 5)" in out
    assert "3 predictions: 1 alert opened or updated" in out
