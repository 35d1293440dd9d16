"""An archive URL that cannot keep files: nothing moves there, and the operator gets one line."""

from __future__ import annotations

from sqlalchemy import func, select

from fleet.tables import ArchiveFile, Telemetry
from tests.fleet.test_cli import run_cli
from tests.lifecycle import support


def test_retention_refuses_an_archive_in_the_process_memory_and_keeps_the_rows(engine, database_url):
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(300), step_s=600.0))
    env = {"SERVICECAST_DATABASE_URL": database_url, "SERVICECAST_ARCHIVE_URL": "memory://archive"}
    out = run_cli("retention", "run", **env)
    assert out.returncode == 1
    assert out.stderr.startswith("servicecast: ") and out.stderr.count("\n") == 1, out.stderr
    assert "memory://archive" in out.stderr and "nothing was archived" in out.stderr
    with engine.connect() as conn:  # the files ended with the process: the rows must still be hot
        assert conn.scalar(select(func.count()).select_from(Telemetry)) == 300
        assert conn.scalar(select(func.count()).select_from(ArchiveFile)) == 0
