"""`servicecast customers export` when it cannot finish: one line naming the cause, and no file left."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fleet import archive, subprocesses
from tests.fleet.test_cli import run_cli
from tests.ingest.support import REPO, wait_until
from tests.lifecycle import support


def _archived(engine, url: str) -> str:
    """Customer acme with archived telemetry; returns the path of its archive file."""
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(300), step_s=600.0))
    archive.run(engine, url=url, before=support.START + timedelta(days=1))
    [path] = support.archived_files(url)
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


def test_ctrl_c_during_an_export_leaves_no_partial_file_and_no_traceback(sqlite_engine, tmp_path):
    # As many rows as acme had in `simulate fleet --machines 30 --days 5`, written here: that command, run
    # under run_cli's 60 s bound, took 40-80 s on a loaded machine and failed the test before its export.
    ids = support.register(sqlite_engine, "acme", [f"p{i}" for i in range(9)])
    for n, pair in enumerate(ids.values()):
        support.write(sqlite_engine, support.rows(pair, seqs=range(7200), step_s=60.0, seed=n))
    url = str(sqlite_engine.url)
    out = tmp_path / "out"
    export_cli = subprocesses.popen(
        [sys.executable, "-m", "servicecast", "customers", "export", "acme", str(out)],
        cwd=REPO,
        env={**os.environ, "SERVICECAST_DATABASE_URL": url, "SERVICECAST_ARCHIVE_URL": str(tmp_path / "a")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: out.exists() and any(out.iterdir()), 60, "the export to start writing", interval=0.01)
    export_cli.send_signal(signal.SIGINT)
    stdout, stderr = export_cli.communicate(timeout=60)
    assert export_cli.returncode != 0, stdout
    assert list(out.iterdir()) == []
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) <= 1, stderr


def _env(engine, tmp_path) -> dict[str, str]:
    return {"SERVICECAST_DATABASE_URL": str(engine.url), "SERVICECAST_ARCHIVE_URL": str(tmp_path / "archive")}


def test_an_export_takes_a_free_name_and_never_replaces_a_file(sqlite_engine, tmp_path):
    _archived(sqlite_engine, str(tmp_path / "archive"))
    out = tmp_path / "out"
    out.mkdir()
    now = datetime.now(UTC)
    # The names of exports started in the next ten minutes: another export of the same second wrote them.
    taken = [
        out / f"servicecast-export-acme-{now + timedelta(seconds=s):%Y%m%dT%H%M%SZ}.zip" for s in range(600)
    ]
    for path in taken:
        path.write_bytes(b"another export")
    done = run_cli("customers", "export", "acme", str(out), **_env(sqlite_engine, tmp_path))
    assert done.returncode == 0, done.stderr
    written = Path(done.stdout.strip())
    assert written.name.endswith("-2.zip") and written.with_name(written.name[:-6] + ".zip") in taken
    assert zipfile.ZipFile(written).testzip() is None
    assert all(path.read_bytes() == b"another export" for path in taken)


def test_the_next_export_removes_what_a_killed_one_left_and_not_a_running_ones_file(sqlite_engine, tmp_path):
    _archived(sqlite_engine, str(tmp_path / "archive"))
    out = tmp_path / "out"
    out.mkdir()
    killed = out / ".servicecast-export-acme-20261206T044211Z.zip.partial"  # the name before this round
    killed.write_bytes(b"PK\x03\x04 half an export")
    running = out / ".servicecast-export-k2j3h4.partial"
    running.write_bytes(b"PK\x03\x04 an export being written")
    with running.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as its writer holds it
        done = run_cli("customers", "export", "acme", str(out), **_env(sqlite_engine, tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"servicecast: removed {killed}, left by an export that was killed\n"
    assert not killed.exists() and running.exists()
    assert sorted(p.name for p in out.iterdir()) == sorted([running.name, Path(done.stdout.strip()).name])


def test_an_export_killed_as_its_zip_is_named_leaves_it_whole_and_the_next_one_removes_the_rest(
    sqlite_engine, tmp_path
):
    _archived(sqlite_engine, str(tmp_path / "archive"))
    out = tmp_path / "out"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    killed = subprocess.run(
        [sys.executable, "-m", "tests.lifecycle.export_child", "acme", str(out)],
        cwd=REPO,
        env={**clean, **_env(sqlite_engine, tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [named] = out.glob("*.zip")
    assert named.stat().st_size > 0  # not a name claimed for an export that never came
    assert zipfile.ZipFile(named).testzip() is None and "manifest.json" in zipfile.ZipFile(named).namelist()
    whole = named.read_bytes()
    [left] = out.glob(".*.partial")  # the hidden name, not yet removed when the child was killed
    done = run_cli("customers", "export", "acme", str(out), **_env(sqlite_engine, tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"servicecast: removed {left}, left by an export that was killed\n"
    assert sorted(out.iterdir()) == sorted([named, Path(done.stdout.strip())]) and named.read_bytes() == whole
