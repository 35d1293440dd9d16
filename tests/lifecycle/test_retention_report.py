"""What `retention run` says it archived: the rows it moved, and what a killed run left that it removed."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import func, select

from fleet import archive, retention, rollups
from fleet.settings import Settings
from fleet.tables import Telemetry
from tests import services
from tests.data import REPO
from tests.lifecycle import support

NOW = support.START + timedelta(days=60)
SETTINGS = {"hot_days": 30.0}  # the cutoff: START + 30 days, after every row


def _hot_steps(plans: list[retention.Plan]) -> list[retention.Step]:
    return [step for plan in plans for step in plan.steps if step.data_class == "telemetry_hot"]


def test_a_rerun_after_a_killed_archive_says_it_removed_the_file_left(engine, database_url, tmp_path):
    ids = support.register(engine, "acme", ["p1", "p2", "p3"])
    for n, pair in enumerate(ids.values()):
        support.write(engine, support.rows(pair, seqs=range(400), seed=n))
    url = str(tmp_path / "archive")
    args = [sys.executable, "-m", "tests.lifecycle.archive_child", database_url, url]
    child = subprocess.run([*args, (NOW - timedelta(days=30)).isoformat(), "1"], cwd=REPO, timeout=120)
    assert child.returncode == -signal.SIGKILL  # after writing its first file, before registering it
    plan = retention.run(engine, settings=Settings(archive_url=url, **SETTINGS), now=NOW)
    [step] = _hot_steps([plan])
    assert (step.count, step.note) == (1200, "removed 1 file a killed run left unregistered")


def test_two_runs_at_once_report_each_row_archived_once(postgres_url, tmp_path):
    with services.migrated_engine(postgres_url) as pg:
        ids = support.register(pg, "acme", ["p1"])
        support.write(pg, support.rows(ids["p1"], seqs=range(900), step_s=600.0))
        url = str(tmp_path / "archive")
        rollups.refresh(pg, archive_url=url)  # the runs meet at the archive, not at the rollups
        settings = Settings(archive_url=url, **SETTINGS)
        # Both count the 900 hot rows, then wait for the archive lock.
        plans = support.two_retention_runs(pg, settings, NOW, archive.exclusive(pg, wait=True))
        assert sorted(step.count for step in _hot_steps(plans)) == [0, 900]  # the old code: [900, 900]
        with pg.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Telemetry)) == 0
