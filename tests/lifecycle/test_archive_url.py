"""An archive URL that cannot keep files, or names a storage it cannot use: one line for the operator."""

from __future__ import annotations

import sys

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from fleet.settings import EXIT_BAD_SETTING, Settings, describe_error
from fleet.tables import ArchiveFile, Telemetry
from tests.fleet.test_cli import run_cli
from tests.lifecycle import support


def test_retention_refuses_an_archive_in_the_process_memory_and_keeps_the_rows(engine, database_url):
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(300), step_s=600.0))
    env = {"SERVICECAST_DATABASE_URL": database_url, "SERVICECAST_ARCHIVE_URL": "memory://archive"}
    out = run_cli("retention", "run", **env)
    assert out.returncode == 1
    assert out.stderr.startswith("servicecast: ") and out.stderr.count("\n") == 1, out.stderr
    assert "memory://archive" in out.stderr and "nothing was archived" in out.stderr
    with engine.connect() as conn:  # the files ended with the process: the rows must still be hot
        assert conn.scalar(select(func.count()).select_from(Telemetry)) == 300
        assert conn.scalar(select(func.count()).select_from(ArchiveFile)) == 0


@pytest.mark.parametrize(
    "command",
    [
        ("retention", "run"),
        ("rollups", "refresh"),
        ("customers", "erase", "acme", "--confirm", "acme"),
        ("customers", "export", "acme", "{out}"),
    ],
)
def test_an_unknown_archive_url_scheme_is_one_line_naming_the_setting(command, sqlite_engine, tmp_path):
    ids = support.register(sqlite_engine, "acme", ["p1"])
    support.write(sqlite_engine, support.rows(ids["p1"], seqs=range(300), step_s=600.0))
    env = {"SERVICECAST_DATABASE_URL": str(sqlite_engine.url), "SERVICECAST_ARCHIVE_URL": "foo://x"}
    out = run_cli(*(part.format(out=tmp_path / "out") for part in command), **env)
    assert out.returncode == EXIT_BAD_SETTING
    assert out.stderr.startswith("servicecast: invalid setting SERVICECAST_ARCHIVE_URL: ")
    assert out.stderr.count("\n") == 1 and "foo://" in out.stderr, out.stderr


def test_an_archive_url_whose_package_is_missing_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as where s3fs is not installed: its import fails
    with pytest.raises(ValidationError) as raised:
        Settings(archive_url="s3://KEYID:SECRET@bucket/archive")
    line = describe_error(raised.value)
    assert line.startswith("invalid setting SERVICECAST_ARCHIVE_URL: ") and "s3fs" in line, line
    assert "SECRET" not in line


@pytest.mark.parametrize("url", ["var/archive", "/srv/archive", "file:///srv/archive", "memory://archive"])
def test_folders_and_installed_schemes_are_accepted(url, tmp_path):
    assert Settings(home=tmp_path, archive_url=url).archive_url.endswith("archive")


@pytest.mark.parametrize("where", ["archive", "archive/below", "file://{home}/archive"])
def test_an_archive_url_naming_a_regular_file_is_refused_at_start(where, tmp_path):
    (tmp_path / "archive").write_bytes(b"not a folder")
    with pytest.raises(ValidationError) as raised:
        Settings(home=tmp_path, archive_url=where.format(home=tmp_path))
    line = describe_error(raised.value)
    assert line.startswith("invalid setting SERVICECAST_ARCHIVE_URL: "), line
    assert "not a folder" in line and str(tmp_path / "archive") in line, line


def test_an_archive_url_naming_a_file_stops_retention_before_it_moves_a_row(engine, database_url, tmp_path):
    # Before: exit 1, `[Errno 20] Not a directory: '…/archive/store=…'`; reads took it for a damaged month.
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(300), step_s=600.0))
    (tmp_path / "archive").write_bytes(b"")
    env = {"SERVICECAST_DATABASE_URL": database_url, "SERVICECAST_ARCHIVE_URL": str(tmp_path / "archive")}
    out = run_cli("retention", "run", **env)
    assert out.returncode == EXIT_BAD_SETTING, out
    assert out.stderr.startswith("servicecast: invalid setting SERVICECAST_ARCHIVE_URL: "), out.stderr
    assert out.stderr.count("\n") == 1 and "not a folder" in out.stderr, out.stderr
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Telemetry)) == 300
