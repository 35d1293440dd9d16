"""`servicecast customers export` when it cannot finish: one line naming the cause, and no file left."""

from __future__ import annotations

from datetime import timedelta

from fleet import archive
from tests.fleet.test_cli import run_cli
from tests.lifecycle import support


def _archived(engine, url: str) -> str:
    """Customer acme with archived telemetry; returns the path of its archive file."""
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(300), step_s=600.0))
    archive.run(engine, url=url, before=support.START + timedelta(days=1))
    where = archive.location(url)
    [path] = where.fs.find(where.root)
    return path


def test_an_unreadable_archive_file_fails_the_export_and_leaves_no_partial_zip(sqlite_engine, tmp_path):
    url = str(tmp_path / "archive")
    path = _archived(sqlite_engine, url)
    with open(path, "r+b") as damaged:
        damaged.truncate(100)
    env = {"SERVICECAST_DATABASE_URL": str(sqlite_engine.url), "SERVICECAST_ARCHIVE_URL": url}
    out = run_cli("customers", "export", "acme", str(tmp_path / "out"), **env)
    assert not (tmp_path / "out").exists()  # found before anything is written
    assert out.returncode == 1
    assert out.stderr.startswith("servicecast: ") and path in out.stderr.replace("\n", "")


def test_a_bad_tenant_or_target_is_one_line_and_writes_nothing(sqlite_engine, tmp_path):
    url = str(tmp_path / "archive")
    _archived(sqlite_engine, url)
    env = {"SERVICECAST_DATABASE_URL": str(sqlite_engine.url), "SERVICECAST_ARCHIVE_URL": url}
    unknown = run_cli("customers", "export", "../../acme", str(tmp_path / "out"), **env)
    assert unknown.returncode == 1 and unknown.stderr == "servicecast: no customer '../../acme'\n"
    assert not (tmp_path / "out").exists()
    (tmp_path / "taken").write_text("a file, not a directory")
    blocked = run_cli("customers", "export", "acme", str(tmp_path / "taken"), **env)
    assert blocked.returncode == 1
    assert blocked.stderr.startswith("servicecast: ") and blocked.stderr.count("\n") == 1, blocked.stderr
