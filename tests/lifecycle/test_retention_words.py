"""`retention run` names what it counts: a count of rows is not read as a year."""

from __future__ import annotations

from tests.fleet.test_cli import run_cli
from tests.lifecycle import support


def test_each_step_names_what_it_counts(engine, database_url, tmp_path):
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(0, 300), step_s=600.0))
    env = {"SERVICECAST_DATABASE_URL": database_url, "SERVICECAST_ARCHIVE_URL": str(tmp_path / "archive")}
    dry = run_cli("retention", "run", "--dry-run", **env)
    assert dry.returncode == 0, dry.stderr
    assert "telemetry_hot: would archive 300 rows older than " in dry.stdout
    assert "quarantine: would delete 0 messages older than " in dry.stdout
    assert "predictions: would delete 0 predictions older than " in dry.stdout
    assert "dead_erasure_events: would drop the account ids of 0 announcements older than " in dry.stdout
