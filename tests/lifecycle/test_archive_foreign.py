"""Files under the archive root that no archive run wrote are never taken for a killed run's leftovers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fleet import archive, archive_store, retention
from fleet.settings import Settings
from tests.lifecycle import support


def test_an_archive_run_and_retention_leave_parquet_files_they_did_not_write(sqlite_engine, tmp_path):
    ids = support.register(sqlite_engine, "acme", ["p1"])
    support.write(sqlite_engine, support.rows(ids["p1"], seqs=range(300), step_s=600.0))
    root = tmp_path / "archive"
    month = root / "tenant=acme" / "month=2026-09"
    # An analyst's saved DuckDB result, an old copy kept by hand, a file named as ours at the root (written
    # before the store folders, or by another deployment sharing the archive).
    foreign = [
        root / "analytics" / "daily.parquet",
        month / "query.parquet",
        month / f"part-{'1' * 32}.parquet",
    ]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"ts": pa.array([support.START], pa.timestamp("us", tz="UTC"))}), path)
    ours = root / archive_store.folder(sqlite_engine) / "tenant=acme" / "month=2026-09"
    killed_runs_leftover = ours / f"part-{'0' * 32}.parquet"
    killed_runs_leftover.parent.mkdir(parents=True)
    killed_runs_leftover.write_bytes(foreign[1].read_bytes())

    report = archive.run(sqlite_engine, url=str(root), before=support.START + timedelta(days=1))
    settings = Settings(archive_url=str(root), hot_days=14, retain_archive_days=1)
    retention.run(sqlite_engine, settings=settings, now=support.START + timedelta(days=30))
    # Before: both were deleted as unregistered files (orphans_removed 3), the analyst's data lost.
    assert report.orphans_removed == 1 and not killed_runs_leftover.exists()
    assert [p.exists() for p in foreign] == [True, True, True]
    assert not list(Path(root).glob("store=*/tenant=acme/month=*/part-*.parquet"))  # expired, and removed
