"""`servicecast train` on machines of a type no types file defines: its cold start says it has no limits."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from servicecast.cli import app


def _readings(path) -> None:  # noqa: ANN001
    """Two weeks of hourly readings of two machines."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with open(path, "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["ts", "tenant", "machine", "temp_c"])
        for code in ("m-1", "m-2"):
            for h in range(24 * 14):
                ts = start + timedelta(hours=h)
                w.writerow([ts.isoformat(), "acme", code, 60 + 3 * math.sin(h / 12)])


def test_a_cold_start_of_an_undefined_type_does_not_claim_oem_limits(database_url, tmp_path):
    env = {"SERVICECAST_DATABASE_URL": database_url}
    runner = CliRunner()
    runner.invoke(app, ["customers", "add", "acme", "--product-improvement"], env=env)
    for code in ("m-1", "m-2"):
        runner.invoke(app, ["machines", "add", "acme", code, "--type", "model9"], env=env)
    _readings(tmp_path / "r.csv")
    assert runner.invoke(app, ["telemetry", "import", str(tmp_path / "r.csv")], env=env).exit_code == 0
    result = runner.invoke(app, ["train"], env=env)
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("model9:"))
    assert "OEM limits, trend" not in line
    assert "no OEM limits: machine type 'model9' is not defined (servicecast types apply FILE)" in line
