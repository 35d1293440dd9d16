"""A copy of the database (a backup restored as staging, say) keeps the store id, so both would write, sweep
and erase in one `store=<id>/` folder: a copy stops with one error, touching nothing, from the moment it is
made (it is another database than the store's owner); a physical copy, which keeps the owner's identity, stops
once the original has archived since the copy (the folder's marker holds a token not its own)."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta

import pandas as pd
import pytest

from fleet import archive, erasure, retention
from fleet.errors import ArchiveStoreCopied, ArchiveStoreTaken
from fleet.settings import Settings
from tests.data import REPO
from tests.fleet.test_cli import run_cli
from tests.lifecycle import support


def test_a_physical_copy_on_the_same_archive_stops_once_the_original_has_archived_since(
    engine, postgres, tmp_path
):
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(40 * 24), step_s=3600.0))  # 40 days, hourly
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=10))
    # Configured with the same archive URL, with the original's identity (a base backup restored elsewhere).
    with support.restored_copy(engine, postgres, tmp_path, physical=True) as copy:
        archive.run(engine, url=url, before=support.START + timedelta(days=30))  # files the copy never saw
        before = support.read_machine(engine, ids["p1"][1], url)

        # Before: the copy's run swept the original's new files as a killed run's leftovers, and its erasure
        # removed the whole store=<id>/tenant=acme; the original's reads then failed ("… is missing").
        with pytest.raises(
            ArchiveStoreTaken, match="alone is in use now, run `servicecast retention claim-archive`"
        ):
            archive.run(copy, url=url, before=support.START + timedelta(days=30))
        settings = Settings(archive_url=url, hot_days=365, retain_archive_days=1)  # expires every file
        with pytest.raises(ArchiveStoreTaken):
            retention.run(copy, settings=settings, now=support.START + timedelta(days=90))
        with pytest.raises(ArchiveStoreTaken):
            erasure.erase(
                copy, tenant="acme", confirm="acme", by="cli:test", archive_url=url, now=support.START
            )
        env = {"SERVICECAST_DATABASE_URL": copy.url.render_as_string(hide_password=False)}
        erased = run_cli(
            "customers", "erase", "acme", "--confirm", "acme", SERVICECAST_ARCHIVE_URL=url, **env
        )
        assert erased.returncode == 1 and erased.stderr.count("\n") == 1, erased.stderr
        assert "run `servicecast retention claim-archive`" in erased.stderr
        with copy.connect() as conn:  # stopped before the erasure began: not listed as unfinished
            assert not erasure.unfinished(conn, [ids["p1"][0]])
        pd.testing.assert_frame_equal(support.read_machine(engine, ids["p1"][1], url), before)
        archive.run(engine, url=url, before=support.START + timedelta(days=40))  # the original goes on
        assert len(support.read_machine(engine, ids["p1"][1], url)) == 40 * 24

        # The original retired (the copy is the one in use now): claiming the folder, as the error says,
        # hands it over.
        claimed = run_cli("retention", "claim-archive", SERVICECAST_ARCHIVE_URL=url, **env)
        assert claimed.returncode == 0, claimed.stderr
        archive.run(copy, url=url, before=support.START + timedelta(days=40))
        assert len(support.read_machine(copy, ids["p1"][1], url)) == 40 * 24
        with pytest.raises(ArchiveStoreTaken):
            archive.run(engine, url=url, before=support.START + timedelta(days=40))


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_archive_run_killed_while_it_marks_the_folder_is_not_taken_for_another_database(
    engine, database_url, tmp_path, when
):
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(40 * 24), step_s=3600.0))
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=10))  # the folder is marked
    cutoff = (support.START + timedelta(days=40)).isoformat()
    child = subprocess.run(
        [sys.executable, "-m", "tests.lifecycle.marker_child", database_url, url, cutoff, when],
        cwd=REPO,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL
    # The marker holds the old token (killed before writing it) or the one being written (after): both are
    # this database's, so the rerun goes on.
    archive.run(engine, url=url, before=support.START + timedelta(days=40))
    assert len(support.read_machine(engine, ids["p1"][1], url)) == 40 * 24


def test_a_copy_made_before_any_archive_run_since_stops_before_touching_the_originals_files(
    engine, postgres, tmp_path
):
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(40 * 24), step_s=3600.0))
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=10))
    files = support.archived_files(url)
    with support.restored_copy(engine, postgres, tmp_path) as copy:  # neither has archived since: same token
        before = support.read_machine(engine, ids["p1"][1], url)
        settings = Settings(archive_url=url, hot_days=365, retain_archive_days=1)  # expires every file

        # Before: the copy's retention run expired the original's files and its erasure removed
        # store=<id>/tenant=acme; the original's reads then failed ("… is missing").
        with pytest.raises(ArchiveStoreCopied, match="retention claim-archive"):
            retention.run(copy, settings=settings, now=support.START + timedelta(days=90))
        with pytest.raises(ArchiveStoreCopied, match="retention claim-archive"):
            erasure.erase(
                copy, tenant="acme", confirm="acme", by="cli:test", archive_url=url, now=support.START
            )
        with pytest.raises(ArchiveStoreCopied, match="retention claim-archive"):
            archive.run(copy, url=url, before=support.START + timedelta(days=30))
        env = {"SERVICECAST_DATABASE_URL": copy.url.render_as_string(hide_password=False)}
        expired = run_cli(
            "retention", "run", SERVICECAST_ARCHIVE_URL=url, SERVICECAST_RETAIN_ARCHIVE_DAYS="1", **env
        )
        assert expired.returncode == 1 and expired.stderr.count("\n") == 1, expired.stderr
        assert "servicecast retention claim-archive" in expired.stderr
        assert support.archived_files(url) == files
        pd.testing.assert_frame_equal(support.read_machine(engine, ids["p1"][1], url), before)
        archive.run(engine, url=url, before=support.START + timedelta(days=40))  # the original goes on
        assert len(support.read_machine(engine, ids["p1"][1], url)) == 40 * 24
