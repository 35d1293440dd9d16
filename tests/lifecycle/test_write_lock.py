"""Lifecycle passes beside other writers on SQLite: another process commits between their reads and writes.

Each pass reads, then writes in one transaction; without SQLite's write lock from BEGIN (`for_writing`) the
first write fails at once with "database is locked" when another connection committed meanwhile.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from fleet import erasure, retention, rollups
from fleet.settings import Settings
from fleet.tables import Customer, Quarantine, Rollup
from tests.lifecycle import support
from tests.write_lock import commit_elsewhere_before_first_write


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(table)) or 0


def test_retention_deletes_after_counting_with_a_commit_elsewhere_between(sqlite_engine, tmp_path) -> None:
    engine = sqlite_engine
    old = support.START - timedelta(days=30)
    support.quarantine_daily(engine, old, 3)
    settings = Settings(archive_url=str(tmp_path / "archive"), retain_quarantine_days=7)
    with commit_elsewhere_before_first_write(engine) as happened:
        plan = retention.run(engine, settings=settings, now=support.START)
    assert happened == ["waited"]
    assert {s.data_class: s.count for s in plan.steps}["quarantine"] == 3
    assert _count(engine, Quarantine) == 0


def test_rollup_refresh_takes_its_marks_with_a_commit_elsewhere_between(sqlite_engine, tmp_path) -> None:
    engine = sqlite_engine
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(0, 120)))
    with commit_elsewhere_before_first_write(engine) as happened:
        hours = rollups.refresh(engine, archive_url=str(tmp_path / "archive"))
    assert happened == ["waited"]
    assert hours == 3  # 120 rows 61 s apart from 22:00: hours 22, 23 and 00
    assert _count(engine, Rollup) > 0


def test_erasure_with_a_commit_elsewhere_between_gathering_and_deleting(sqlite_engine, tmp_path) -> None:
    engine = sqlite_engine
    ids = support.register(engine, "zeta-erase", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(0, 10)))
    with commit_elsewhere_before_first_write(engine) as happened:
        receipt = erasure.erase(
            engine,
            tenant="zeta-erase",
            confirm="zeta-erase",
            by="cli:test",
            archive_url=str(tmp_path / "archive"),
            now=support.START,
        )
    assert happened == ["waited"]
    assert receipt["counts"]["telemetry"] == 10
    assert _count(engine, Customer) == 0
