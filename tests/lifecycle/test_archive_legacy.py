"""Files archived before the store folders (migration 0024) lie in the archive root's `tenant=…` folders,
which another deployment sharing the archive URL may have written to as well: an erasure and retention remove
this database's files there, registered or not, and an erasure names every file it leaves there and why."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import select

from fleet import archive, archive_format, retention
from fleet.settings import Settings
from fleet.tables import ErasureReceipt
from tests.fleet.test_cli import run_cli
from tests.lifecycle import support


def _files(url: str) -> set[str]:
    return {Path(p).relative_to(url).as_posix() for p in support.archived_files(url)}


def _part(month: str) -> str:
    """A name an archive run gives a file of tenant acme in `month`, at the root as before migration 0024."""
    return f"tenant=acme/month={month}/part-{uuid.uuid4().hex}.parquet"


def _write_foreign(url: str, relative: str, ids: tuple[int, int]) -> None:
    """An archive file of another deployment's acme (customer and machine ids this database does not give
    acme), written where an archive run before migration 0024 put it."""
    table = archive_format.encode(pd.DataFrame(support.rows(ids, seqs=range(20), step_s=600.0)))
    (Path(url) / relative).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, Path(url) / relative, **archive_format.write_options(table))


def _archived_before_the_store_folders(engine, tmp_path) -> tuple[tuple[int, int], str, list[str]]:
    """Acme's two months archived as before migration 0024: (customer and machine ids, url, their paths)."""
    ids = support.two_months(engine)
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=60))
    return ids, url, support.to_legacy_layout(engine, url)


def test_an_erasure_removes_the_customers_unregistered_files_at_the_root_and_names_what_it_leaves(
    engine, database_url, tmp_path
):
    (customer_id, machine_id), url, registered = _archived_before_the_store_folders(engine, tmp_path)
    # A killed archive run's leftover from before 0024: acme's rows in a file no registration names.
    leftover = _part(registered[0].split("/")[1].removeprefix("month="))
    shutil.copy(Path(url) / registered[0], Path(url) / leftover)
    foreign = _part("2026-09")
    _write_foreign(url, foreign, (customer_id + 1000, machine_id + 1000))
    notes = "tenant=acme/notes.csv"  # someone's own file in the folder
    (Path(url) / notes).write_text("machine,remark\np1,noisy\n")

    env = {"SERVICECAST_DATABASE_URL": database_url, "SERVICECAST_ARCHIVE_URL": url}
    erased = run_cli("customers", "erase", "acme", "--confirm", "acme", **env)
    assert erased.returncode == 0, erased.stderr
    receipt = json.loads(erased.stdout)
    # Before: the leftover stayed on disk with acme's rows, and the receipt named none of the three.
    assert _files(url) == {foreign, notes}
    left = receipt["kept"]["archive_files"]
    assert foreign.removeprefix("tenant=acme/") in left and "another deployment" in left, left
    assert "notes.csv" in left and "not a file the archive writes" in left, left
    assert leftover.removeprefix("tenant=acme/") not in left
    assert "acme" not in json.dumps(receipt["kept"])  # the stored receipt names no code of the customer
    with engine.connect() as conn:
        assert conn.scalar(select(ErasureReceipt.kept)) == receipt["kept"]
    shown = {item["file"] for item in receipt["left_in_archive"]}  # printed, not stored
    assert shown == {archive.location(url).path(p) for p in (foreign, notes)}
    lines = [line for line in erased.stderr.splitlines() if "left in the archive, check it by hand" in line]
    assert len(lines) == 2 and all(any(p in line for line in lines) for p in shown), erased.stderr


def test_retention_killed_before_removing_an_expired_file_at_the_root_removes_it_when_rerun(
    engine, database_url, tmp_path
):
    (customer_id, machine_id), url, registered = _archived_before_the_store_folders(engine, tmp_path)
    foreign = _part("2026-09")
    _write_foreign(url, foreign, (customer_id + 1000, machine_id + 1000))  # as old, but not this database's
    now = support.START + timedelta(days=64)  # 60 days back is October 2: only September's file expired

    support.killed_retention(database_url, url, now)
    september = [p for p in registered if "month=2026-09" in p]
    assert september and _files(url) == {*registered, foreign}  # unregistered, on disk

    settings = Settings(archive_url=url, hot_days=14, retain_archive_days=60)
    retention.run(engine, settings=settings, now=now)
    # Before: the sweep looked only in this database's store folder, and September's file stayed for good.
    assert _files(url) == {*registered, foreign} - set(september)
