"""Retention killed after unregistering expired archive files, before removing them: a rerun removes them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from fleet import archive, history, retention
from fleet.settings import Settings
from fleet.tables import ArchiveFile
from tests.lifecycle import support


def _on_disk_and_registered(engine, url: str) -> tuple[set[str], set[str]]:
    where = archive.location(url)
    on_disk = {p.removeprefix(where.root.rstrip("/") + "/") for p in support.archived_files(url)}
    with engine.connect() as conn:
        return on_disk, set(conn.scalars(select(ArchiveFile.path)))


def test_retention_killed_between_its_commit_and_the_file_removal_removes_them_when_rerun(
    engine, database_url, tmp_path
):
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(0, 40 * 24), step_s=3600.0))  # 40 days, hourly
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=10))  # September, October to the 8th
    archive.run(engine, url=url, before=support.START + timedelta(days=40))  # October, November
    files, registered = _on_disk_and_registered(engine, url)
    assert files == registered and any("month=2026-09" in p for p in files)
    now = support.START + timedelta(days=64)  # 60 days back is October 2: only September's file expired

    support.killed_retention(database_url, url, now)
    left, registered = _on_disk_and_registered(engine, url)
    assert left == files and {p for p in files - registered if "month=2026-09" in p}  # unregistered, on disk

    settings = Settings(archive_url=url, hot_days=14, retain_archive_days=60)
    retention.run(engine, settings=settings, now=now)  # no hot row is past 14 days: no archive run
    # Before: the expired file stayed until some later archive run happened to sweep it.
    assert _on_disk_and_registered(engine, url) == (registered, registered)
    with engine.connect() as conn:
        kept = history.read_rows(conn, machine_ids=[ids["p1"][1]], archive_url=url)
    assert kept["ts"].min() >= support.START + timedelta(days=2)  # October's rows still read
