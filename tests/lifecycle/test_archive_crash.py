"""An archive move killed with SIGKILL, then rerun: the same rows, none twice (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from fleet import archive, history, subprocesses
from fleet.tables import ArchiveFile
from tests.data import REPO
from tests.lifecycle import support


def _child(database_url: str, url: str, before, kill_after_file: int) -> subprocess.Popen:
    args = [sys.executable, "-m", "tests.lifecycle.archive_child", database_url, url, before.isoformat()]
    return subprocesses.popen([*args, str(kill_after_file)], cwd=REPO)


@pytest.mark.parametrize("kill", ["between_write_and_commit", "at_a_random_time"])
def test_killed_move_then_rerun_loses_and_duplicates_nothing(engine, database_url, tmp_path, kill):
    ids = support.register(engine, "acme", ["p1", "p2", "p3"])
    machines = [i[1] for i in ids.values()]
    for n, pair in enumerate(ids.values()):
        support.write(engine, support.rows(pair, seqs=range(2500), seed=n))
    with engine.connect() as conn:
        before_move = history.read_hot(conn, machine_ids=machines)
    url = str(tmp_path / "archive")
    cutoff = support.START + timedelta(days=1, hours=7)
    rng = random.Random()
    kill_after = rng.randint(1, 3)  # of 3 files: one per machine
    if kill == "between_write_and_commit":
        child = _child(database_url, url, cutoff, kill_after_file=kill_after)
        assert child.wait(timeout=120) == -signal.SIGKILL
    else:
        child = _child(database_url, url, cutoff, kill_after_file=0)
        time.sleep(rng.uniform(1.0, 3.0))  # the interpreter's start takes about a second
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    with engine.connect() as conn:
        registered_before_rerun = conn.scalar(select(func.count()).select_from(ArchiveFile))
    report = archive.run(engine, url=url, before=cutoff, max_rows=300)
    with engine.connect() as conn:
        after = history.read_rows(conn, machine_ids=machines, archive_url=url)
        registered = set(conn.scalars(select(ArchiveFile.path)))
    assert len(after) == len(before_move)
    assert after[["machine_id", "seq"]].duplicated().sum() == 0
    for column in history.ROW_COLUMNS:
        assert after[column].tolist() == before_move[column].tolist(), column
    where = archive.location(url)
    on_disk = {p.removeprefix(where.root.rstrip("/") + "/") for p in support.archived_files(url)}
    assert on_disk == registered  # the killed run's unregistered file is gone
    if kill == "between_write_and_commit":
        assert (report.orphans_removed, registered_before_rerun) == (1, kill_after - 1)
