"""An erasure whose archive files cannot be removed: one line, nothing committed, a rerun completes it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from fleet import archive, archive_store
from fleet.settings import get_settings
from servicecast.cli import app
from tests.lifecycle import support


@contextmanager
def _undeletable(folder: Path) -> Iterator[None]:
    """Files in `folder` cannot be removed: immutable for root (who ignores modes), read-only otherwise."""
    as_root = os.geteuid() == 0
    subprocess.run(["chattr", "+i", str(folder)], check=True) if as_root else folder.chmod(0o555)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True) if as_root else folder.chmod(0o755)


def test_an_erasure_whose_files_cannot_be_removed_ends_in_one_line(
    engine, database_url, tmp_path, monkeypatch
):
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(300), step_s=600.0))
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=3))
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    monkeypatch.setenv("SERVICECAST_ARCHIVE_URL", url)
    get_settings.cache_clear()
    runner = CliRunner()
    erase = ["customers", "erase", "acme", "--confirm", "acme"]

    folder = tmp_path / "archive" / archive_store.folder(engine) / "tenant=acme"
    with _undeletable(folder / "month=2026-09"):
        result = runner.invoke(app, erase)
    # Before: a PermissionError traceback.
    assert result.exit_code == 1 and not isinstance(result.exception, PermissionError), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot erase 'acme'" in lines[0] and "month=2026-09" in lines[0], lines
    assert "again" in lines[0]
    assert "acme" in runner.invoke(app, ["customers", "list"]).output  # rolled back: still there

    assert runner.invoke(app, erase).exit_code == 0
    assert not folder.exists()
