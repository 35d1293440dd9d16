"""An archive file is on disk (fsynced, with its folders) before the transaction that deletes its rows."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from fleet import archive, archive_store, durable, history
from fleet.tables import ArchiveFile
from tests.data import REPO
from tests.lifecycle import support


def _fsynced_before_the_kill(log: Path) -> list[str]:
    """The paths the traced child fsynced before it killed itself (between a file's write and its commit)."""
    synced = []
    for line in log.read_text().splitlines():
        if " kill(" in line and "SIGKILL" in line:
            return synced
        if found := support.FSYNC.match(line):
            synced.append(found["path"])
    raise AssertionError(f"the child never reached its kill:\n{log.read_text()[-2000:]}")


def test_a_file_and_its_folders_are_fsynced_before_its_rows_are_deleted(engine, database_url, tmp_path):
    machines, before_move = support.two_pumps(engine)
    url, log = tmp_path / "archive", tmp_path / "strace.log"
    cutoff = support.START + timedelta(days=1)
    child_args = [sys.executable, "-m", "tests.lifecycle.archive_child", database_url, str(url)]
    trace = support.tracer(log, "fsync,fdatasync,kill")
    # Killed at its first file's `after_write`: written, not yet registered, its rows not yet deleted.
    child = subprocess.run([*trace, *child_args, cutoff.isoformat(), "1"], cwd=REPO, timeout=120)
    assert child.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), child
    synced = _fsynced_before_the_kill(log)
    # Written whole: under its hidden name (`durable.left`), fsynced, then renamed.
    part = "/" + durable.left(r"part-[0-9a-f]{32}\.parquet") + "$"
    written = [p for p in synced if re.search(part, p)]
    assert len(written) == 1, synced
    folders = [str(p) for p in Path(written[0]).parents if p == url.parent or url.parent in p.parents]
    after_the_file = synced[synced.index(written[0]) + 1 :]  # its folders' entries: its name, theirs
    assert [f for f in folders if f not in after_the_file] == [], synced  # month, tenant, store, archive, ..
    # The store's marker, the run's first write: an empty one after a power cut reads as another database's.
    marker = "/" + durable.left(re.escape(archive_store.MARKER)) + "$"
    assert [p for p in synced[: synced.index(written[0])] if re.search(marker, p)], synced
    # Resumed: every row once, in the archive or hot.
    report = archive.run(engine, url=str(url), before=cutoff, max_rows=300)
    with engine.connect() as conn:
        after = history.read_rows(conn, machine_ids=machines, archive_url=str(url))
        registered = conn.scalar(select(func.count()).select_from(ArchiveFile))
    assert report.orphans_removed == 1 and registered == report.files > 0
    assert after[["machine_id", "seq"]].duplicated().sum() == 0
    for column in history.ROW_COLUMNS:
        assert after[column].tolist() == before_move[column].tolist(), column
