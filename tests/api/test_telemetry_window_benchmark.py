"""`python -m benchmarks.telemetry_window --db FILE` answers a missing FILE with one line, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_database_is_named_with_the_command_that_fills_it_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "api-bench.db"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.telemetry_window", "--db", str(missing)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert f"python -m benchmarks.api --db {missing}" in run.stderr.splitlines()[-1]
    assert not missing.exists()
