"""Two deployments (two databases) sharing one archive URL: neither takes the other's files for its own."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from fleet import archive, erasure, history, retention
from fleet.settings import Settings
from tests.lifecycle import support


def _read(engine: Engine, machine: int, url: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return history.read_rows(conn, machine_ids=[machine], archive_url=url)


def test_a_deployment_sweeps_expires_and_erases_only_its_own_files(engine, sqlite_engine, tmp_path):
    url = str(tmp_path / "shared-archive")
    other = sqlite_engine  # a second deployment (staging, another plant) configured with the same archive
    theirs_machine, ours_machine = support.two_months(other)[1], support.two_months(engine)[1]
    archive.run(other, url=url, before=support.START + timedelta(days=60))
    theirs = _read(other, theirs_machine, url)
    assert len(theirs) == 3000

    archive.run(engine, url=url, before=support.START + timedelta(days=60))  # sweeps orphans first
    assert len(_read(engine, ours_machine, url)) == 3000
    settings = Settings(archive_url=url, hot_days=365, retain_archive_days=1)
    retention.run(engine, settings=settings, now=support.START + timedelta(days=90))  # expires all of ours
    erasure.erase(
        engine,
        tenant="acme",
        confirm="acme",
        by="cli:test",
        archive_url=url,
        now=support.START + timedelta(90),
    )
    # Before: the first run's sweep deleted the other deployment's files as unregistered orphans (its reads
    # then failed: "… is missing (restore it from a backup …)"), and the erasure removed its tenant=acme.
    pd.testing.assert_frame_equal(_read(other, theirs_machine, url), theirs)


def test_files_registered_before_the_store_folders_read_and_expire_as_before(engine, tmp_path):
    machine = support.two_months(engine)[1]
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=60))
    before = _read(engine, machine, url)
    support.to_legacy_layout(engine, url)  # as an archive run before migration 0024 named them
    pd.testing.assert_frame_equal(_read(engine, machine, url), before)
    archive.run(engine, url=url, before=support.START + timedelta(days=60))
    settings = Settings(archive_url=url, hot_days=365, retain_archive_days=1)
    retention.run(engine, settings=settings, now=support.START + timedelta(days=90))
    assert len(_read(engine, machine, url)) == 0
    assert not list(Path(url).rglob("*.parquet"))
