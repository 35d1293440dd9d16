"""The archive's files are written whole (`fleet.durable.write`): a full disk or a crash as an archive run
writes its store's marker or a Parquet file leaves no empty marker (read later as another database's) and no
truncated file in the folder (read as damage by anything that reads the folder), and the next run sweeps what
a killed one left.

The runs under test are children whose files may not grow past a limit (RLIMIT_FSIZE): a write past it fails
with EFBIG as on a full disk, or, unless the child ignores SIGXFSZ, kills it there. On PostgreSQL, whose files
the server writes: a SQLite database's own files would hit the limit first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from sqlalchemy import func, select

from fleet import archive, archive_store, history
from fleet.tables import ArchiveFile
from tests import services
from tests.data import REPO
from tests.lifecycle import support

CHILD = """
import resource, signal, sys
from datetime import datetime
from fleet import archive
from fleet.db import make_engine
database_url, archive_url, before, limit, at_the_limit = sys.argv[1:]
engine = make_engine(database_url)
# Python ignores SIGXFSZ: the write fails (EFBIG) and the run raises; its default kills the child there.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN if at_the_limit == "refused" else signal.SIG_DFL)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.RLIM_INFINITY))
try:
    archive.run(engine, url=archive_url, before=datetime.fromisoformat(before))
except OSError as exc:
    print("refused:", exc.strerror)
"""
DAY = support.START + timedelta(days=1)
pytestmark = pytest.mark.postgres


def _run_limited(
    database_url: str, url: Path, *, limit: int, at_the_limit: str
) -> subprocess.CompletedProcess:
    """An archive run of the rows before the first day's end in a child whose files stop at `limit` bytes."""
    return subprocess.run(
        [sys.executable, "-c", CHILD, database_url, str(url), DAY.isoformat(), str(limit), at_the_limit],
        cwd=REPO,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _every_row_once(engine, machines: list[int], url: Path, before_move) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        after = history.read_rows(conn, machine_ids=machines, archive_url=str(url))
    assert after[["machine_id", "seq"]].duplicated().sum() == 0
    assert after["seq"].tolist() == before_move["seq"].tolist()


def _files(url: Path) -> set[str]:
    return {str(p.relative_to(url)) for p in url.rglob("*") if p.is_file()}


def test_a_full_disk_as_the_marker_is_written_leaves_the_marker_the_database_accepts(postgres_url, tmp_path):
    url = tmp_path / "archive"
    with services.migrated_engine(postgres_url) as engine:
        machines, before_move = support.two_pumps(engine)
        archive.run(engine, url=str(url), before=support.START + timedelta(hours=6))
        marker = url / archive_store.folder(engine) / archive_store.MARKER
        token = marker.read_bytes()

        child = _run_limited(postgres_url, url, limit=0, at_the_limit="refused")
        assert child.stdout.startswith("refused: File too large"), child.stdout + child.stderr
        # The old code: an empty marker, so the next run stopped with ArchiveStoreTaken ('in use by another
        # database'), as did retention and erasure, until `claim-archive`.
        assert marker.read_bytes() == token
        report = archive.run(engine, url=str(url), before=DAY)
        assert report.files > 0
        _every_row_once(engine, machines, url, before_move)


def test_a_full_disk_as_a_file_is_written_leaves_no_truncated_file_in_the_folder(postgres_url, tmp_path):
    url = tmp_path / "archive"
    with services.migrated_engine(postgres_url) as engine:
        machines, before_move = support.two_pumps(engine)
        child = _run_limited(postgres_url, url, limit=4096, at_the_limit="refused")  # files are larger
        assert child.stdout.startswith("refused: File too large"), child.stdout + child.stderr
        # The old code: a truncated part-….parquet in the folder, which a reader of it (pyarrow's datasets,
        # DuckDB, Spark) fails on: 'Parquet magic bytes not found in footer'.
        assert [f for f in _files(url) if f.endswith(".parquet")] == []
        assert ds.dataset(url, format="parquet", partitioning="hive").to_table().num_rows == 0

        report = archive.run(engine, url=str(url), before=DAY)
        assert report.files > 0 and report.orphans_removed == 0
        assert ds.dataset(url, format="parquet", partitioning="hive").to_table().num_rows == report.rows
        _every_row_once(engine, machines, url, before_move)


def test_the_part_a_run_killed_as_it_writes_leaves_is_swept_by_the_next(postgres_url, tmp_path):
    url = tmp_path / "archive"
    with services.migrated_engine(postgres_url) as engine:
        machines, before_move = support.two_pumps(engine)
        child = _run_limited(postgres_url, url, limit=4096, at_the_limit="killed")
        assert child.returncode == -signal.SIGXFSZ, child.stdout + child.stderr
        left = _files(url) - {f"{archive_store.folder(engine)}/{archive_store.MARKER}"}
        assert len(left) == 1, left  # its first file, cut off at the limit

        report = archive.run(engine, url=str(url), before=DAY)
        assert report.orphans_removed == 1 and not (_files(url) & left)
        with engine.connect() as conn:
            registered = set(conn.scalars(select(ArchiveFile.path)))
            assert conn.scalar(select(func.count()).select_from(ArchiveFile)) == report.files > 0
        marker = f"{archive_store.folder(engine)}/{archive_store.MARKER}"
        assert _files(url) - {marker} == registered
        _every_row_once(engine, machines, url, before_move)
