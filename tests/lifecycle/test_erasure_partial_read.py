"""A read of a customer whose erasure failed after removing some files: told to finish it, not to restore."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fleet import archive, archive_store, erasure, errors, history
from tests.lifecycle import support
from tests.lifecycle.test_erasure_storage import _undeletable


def test_a_file_an_unfinished_erasure_removed_reads_as_that_erasure(engine, tmp_path):
    machine = support.two_months(engine)[1]
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=60))
    folder = tmp_path / "archive" / archive_store.folder(engine) / "tenant=acme"
    with _undeletable(folder / "month=2026-10"), pytest.raises(OSError, match="cannot be removed"):
        # September's file goes, October's cannot: the erasure rolls back with one month already gone.
        erasure.erase(
            engine, tenant="acme", confirm="acme", by="cli:test", archive_url=url, now=support.START
        )

    with engine.connect() as conn, pytest.raises(errors.ArchiveUnreadable) as read:
        history.read_rows(conn, machine_ids=[machine], archive_url=url)
    # Before: "… is missing (restore it from a backup …)": restoring would bring the erased data back.
    assert "month 2026-09" in str(read.value) and erasure.rerun("acme") in str(read.value)
    assert "backup" not in str(read.value)
