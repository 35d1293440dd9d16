"""SQLite put back from a copy taken before retention's last commit (what a lost commit leaves), its files
removed: the expired files' reads fail until the next run, which unregisters them again; no row is lost."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, select

from fleet import archive, errors, history, retention
from fleet.settings import Settings
from fleet.tables import ArchiveFile
from tests.lifecycle import support


def _copy(engine: Engine, source: Path, target: Path) -> None:
    """The database file as a power cut leaves it after losing every commit since `source` was taken."""
    engine.dispose()
    with sqlite3.connect(source) as a, sqlite3.connect(target) as b:
        a.backup(b)


def test_a_lost_retention_commit_fails_reads_of_the_expired_files_until_the_next_run(sqlite_engine, tmp_path):
    ids = support.register(sqlite_engine, "acme", ["p1"])
    support.write(sqlite_engine, support.rows(ids["p1"], seqs=range(0, 40 * 24), step_s=3600.0))
    url, machines = str(tmp_path / "archive"), [ids["p1"][1]]
    archive.run(sqlite_engine, url=url, before=support.START + timedelta(days=40))
    database, before_run = Path(make_url(sqlite_engine.url).database), tmp_path / "before.db"
    settings = Settings(archive_url=url, hot_days=14, retain_archive_days=60)
    now = support.START + timedelta(days=64)  # September's file expired
    _copy(sqlite_engine, database, before_run)
    retention.run(sqlite_engine, settings=settings, now=now)  # unregisters, commits, removes the file
    with sqlite_engine.connect() as conn:
        kept_by_the_run = history.read_rows(conn, machine_ids=machines, archive_url=url)
    _copy(sqlite_engine, before_run, database)  # the commit lost, the file gone
    with sqlite_engine.connect() as conn:
        with pytest.raises(errors.ArchiveUnreadable, match="month=2026-09"):
            history.read_rows(conn, machine_ids=machines, archive_url=url)

    retention.run(sqlite_engine, settings=settings, now=now)
    with sqlite_engine.connect() as conn:
        registered = set(conn.scalars(select(ArchiveFile.path)))
        kept = history.read_rows(conn, machine_ids=machines, archive_url=url)
    assert registered and not any("month=2026-09" in p for p in registered)
    assert kept["seq"].tolist() == kept_by_the_run["seq"].tolist() and kept["ts"].min() > support.START
