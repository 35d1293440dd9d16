"""A rollup refresh killed inside a batch, then run again: the rollups are the rows' (SQLite, PostgreSQL)."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import func, select

from fleet import rollups
from fleet.tables import RollupDirty
from tests.data import REPO
from tests.lifecycle import support
from tests.lifecycle.test_rollups import _check


def test_a_refresh_killed_inside_a_batch_then_rerun_gives_the_rows_rollups(engine, database_url, tmp_path):
    ids = support.register(engine, "acme", ["p1", "p2"])
    machine_ids = [ids["p1"][1], ids["p2"][1]]
    support.write(
        engine, support.rows(ids["p1"], seqs=range(1500)) + support.rows(ids["p2"], seqs=range(900))
    )
    url = str(tmp_path / "archive")
    rollups.refresh(engine, archive_url=url, batch=5)  # then late rows mark hours that have rollups
    late = support.START - timedelta(hours=1500, minutes=-30)  # one row in each of 30 hours with rollups
    support.write(engine, support.rows(ids["p1"], seqs=range(1500, 1530), start=late, step_s=3600.0, seed=2))
    with engine.connect() as conn:
        marked = conn.scalar(select(func.count()).select_from(RollupDirty))
    args = [sys.executable, "-m", "tests.lifecycle.rollup_child", database_url, url, "2"]
    assert subprocess.run(args, cwd=REPO, timeout=120).returncode == -signal.SIGKILL
    with engine.connect() as conn:  # the killed batch's deletes rolled back: its marks are there again
        assert conn.scalar(select(func.count()).select_from(RollupDirty)) == marked - 5
    rollups.refresh(engine, archive_url=url)
    _check(engine, machine_ids)
