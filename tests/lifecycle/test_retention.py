"""Retention with a fake clock: each data class loses what is older than its days; audit has a floor."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from fleet import archive, audit, history, retention, rollups
from fleet.db import session
from fleet.settings import Settings
from fleet.tables import ArchiveFile, Quarantine, Rollup, Telemetry, WorkflowEvent
from tests.lifecycle import support


def _count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(table).where(*where)) or 0


def test_retention_with_a_fake_clock(engine, tmp_path):
    ids = support.register(engine, "acme", ["p1"])
    rows = support.rows(ids["p1"], seqs=range(0, 30 * 24 * 6), step_s=600.0)  # 30 days, 10 minutes apart
    support.write(engine, rows)
    url = str(tmp_path / "archive")
    rollups.refresh(engine, archive_url=url)
    start = support.START
    support.quarantine_daily(engine, start, 30)
    with session(engine) as sess:
        for day in (0, 10, 20):
            audit.record(sess, "customer", ids["p1"][0], "test", None, at=start + timedelta(days=day))
    settings = Settings(
        archive_url=url,
        hot_days=14,
        retain_archive_days=60,
        retain_quarantine_days=7,
        retain_rollup_hour_days=20,
        retain_rollup_day_days=None,
        retain_audit_days=1,
        audit_floor_days=15,
    )
    now = start + timedelta(days=30)  # the fake clock
    audit_rows = _count(engine, WorkflowEvent)  # ours and the registration's (at the real time)

    dry = retention.run(engine, settings=settings, now=now, dry_run=True)
    counts = {s.data_class: s.count for s in dry.steps}
    assert counts["telemetry_hot"] == _count(engine, Telemetry, Telemetry.ts < now - timedelta(days=14)) > 0
    assert counts["quarantine"] == 23
    assert counts["audit"] == 2  # older than the floor (15 days), not than retain_audit_days (1 day)
    assert counts["rollup_hour"] == _count(
        engine, Rollup, Rollup.width_s == 3600, Rollup.bucket < now - timedelta(days=20)
    )
    assert _count(engine, Quarantine) == 30 and _count(engine, WorkflowEvent) == audit_rows  # dry

    done = retention.run(engine, settings=settings, now=now)
    assert {s.data_class: s.count for s in done.steps} == counts
    assert _count(engine, Telemetry, Telemetry.ts < now - timedelta(days=14)) == 0
    assert _count(engine, Quarantine) == 7
    assert _count(engine, WorkflowEvent) == audit_rows - 2
    assert _count(engine, Rollup, Rollup.width_s == 3600, Rollup.bucket < now - timedelta(days=20)) == 0
    assert _count(engine, Rollup, Rollup.width_s == 86_400, Rollup.sensor == rollups.MESSAGES) == 31  # kept
    with engine.connect() as conn:  # archived, not lost
        assert len(history.read_rows(conn, machine_ids=[ids["p1"][1]], archive_url=url)) == len(rows)

    # Two months later the archive's files pass their 60 days: registrations and files go.
    later = retention.run(engine, settings=settings, now=now + timedelta(days=61))
    assert {s.data_class: s.count for s in later.steps}["archive"] > 0
    assert _count(engine, ArchiveFile) == 0
    where = archive.location(url)
    assert [p for p in where.fs.find(where.root) if p.endswith(".parquet")] == []
