"""Two retention runs at once (two cron jobs) on the same expired archive files: they take turns."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Engine, func, select

from fleet import archive
from fleet.settings import Settings
from fleet.tables import ArchiveFile
from tests import services
from tests.lifecycle import support


@contextmanager
def _holding_file_rows(engine: Engine) -> Iterator[None]:
    """A third session holds the file rows, as a slow transaction would: both runs reach their delete."""
    with engine.connect() as holder, holder.begin():
        holder.execute(select(ArchiveFile.id).with_for_update())
        yield


def test_two_runs_delete_each_expired_archive_file_once(postgres_url, tmp_path):
    with services.migrated_engine(postgres_url) as pg:
        ids = support.register(pg, "acme", ["p1"])
        support.write(pg, support.rows(ids["p1"], seqs=range(3000), step_s=1200.0))  # 6 weeks, 2 months
        url = str(tmp_path / "archive")
        archive.run(pg, url=url, before=support.START + timedelta(days=60))
        with pg.connect() as conn:
            files = conn.scalar(select(func.count()).select_from(ArchiveFile))
        assert files > 1
        settings = Settings(archive_url=url, hot_days=365, retain_archive_days=1)
        now = support.START + timedelta(days=90)
        plans = support.two_retention_runs(pg, settings, now, _holding_file_rows(pg))
        deleted = [s.count for plan in plans for s in plan.steps if s.data_class == "archive"]
        assert sorted(deleted) == [0, files]  # each file deleted, and reported, by one run
        with pg.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(ArchiveFile)) == 0
        assert [p for p in (tmp_path / "archive").rglob("*.parquet")] == []
