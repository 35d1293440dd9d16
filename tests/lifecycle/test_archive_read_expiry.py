"""A read of archived months while retention expires one of them: the rows left after it, no error."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from fleet import archive, export, history, retention
from fleet.settings import Settings
from fleet.tables import ArchiveFile
from tests.lifecycle import support


def test_a_read_that_listed_a_file_retention_then_removed_gets_the_rows_left(engine, tmp_path, monkeypatch):
    machine = support.two_months(engine)[1]
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=60))
    with engine.connect() as conn:
        files = conn.scalar(select(func.count()).select_from(ArchiveFile))
    settings = Settings(archive_url=url, hot_days=365, retain_archive_days=60)
    now = support.START + timedelta(days=63)  # expires the files of September only
    listed, expired = threading.Event(), threading.Event()
    real_files_for = archive.files_for

    def listing_then_waiting(conn, **kwargs):
        paths = real_files_for(conn, **kwargs)
        listed.set()
        assert expired.wait(120)  # the retention run deletes files this read has listed
        return paths

    monkeypatch.setattr(archive, "files_for", listing_then_waiting)
    results: list[pd.DataFrame] = []
    failures: list[BaseException] = []

    def chart() -> None:
        try:
            with engine.connect() as conn:
                results.append(history.read_rows(conn, machine_ids=[machine], archive_url=url))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            failures.append(exc)

    reader = threading.Thread(target=chart)
    reader.start()
    assert listed.wait(120)
    plan = retention.run(engine, settings=settings, now=now)
    expired.set()
    reader.join()
    monkeypatch.undo()
    # Before: ArchiveUnreadable "archive month 2026-09 cannot be read: its file … is missing (restore it
    # from a backup …)", a claim of data loss for rows retention removed on purpose.
    assert failures == []
    (step,) = [s for s in plan.steps if s.data_class == "archive"]
    assert 0 < step.count < files
    with engine.connect() as conn:
        after = history.read_rows(conn, machine_ids=[machine], archive_url=url)
    pd.testing.assert_frame_equal(results[0], after)
    assert 0 < len(after) < 3000  # September's rows expired, October's read


def test_an_export_checking_a_file_retention_then_removed_reads_on(engine, tmp_path, monkeypatch):
    support.two_months(engine)
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=60))
    settings = Settings(archive_url=url, hot_days=365, retain_archive_days=60)
    plans: list[retention.Plan] = []
    expiring = threading.Thread(
        target=lambda: plans.append(
            retention.run(engine, settings=settings, now=support.START + timedelta(days=63))
        )
    )
    real_open = archive.location(url).fs.open
    opened = []

    def opening_after_expiry(path, *args, **kwargs):
        if not opened:  # the export's check has listed the files; retention removes one before it is opened
            opened.append(path)
            expiring.start()
            expiring.join()
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(archive.location(url).fs, "open", opening_after_expiry)
    data = b"".join(export.stream(engine, tenant="acme", archive_url=url))
    monkeypatch.undo()
    # Before: ArchiveUnreadable, "… is missing (restore it from a backup …)".
    assert plans and not Path(opened[0]).exists() and data.startswith(b"PK")
