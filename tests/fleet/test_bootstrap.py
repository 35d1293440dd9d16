"""One start-up for every command: settings or exit 2, and a loop that SIGTERM ends and that may not die."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet import bootstrap, subprocesses
from servicecast.cli import app
from tests import services


def test_sigterm_stops_the_loop_and_the_process_exits_zero() -> None:
    passes = []
    before = signal.getsignal(signal.SIGTERM)

    def loop(stop: threading.Event) -> None:
        while not stop.wait(0.05):
            passes.append(1)

    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    assert bootstrap.run_until_stopped(loop, name="test-loop") == 0
    assert len(passes) >= 3  # it ran until the signal came
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.expect_logged_errors
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("ending", ["raises", "returns"])
def test_a_loop_that_ends_unasked_exits_non_zero(ending: str, caplog: pytest.LogCaptureFixture) -> None:
    def loop(stop: threading.Event) -> None:
        if ending == "raises":
            raise RuntimeError("database gone for good")

    assert bootstrap.run_until_stopped(loop, name="test-loop") == bootstrap.EXIT_ERROR
    assert "test-loop ended without being asked to" in caplog.text


# A loop stuck where it never looks at `stop` (say, waiting on a lock held elsewhere), in its own process.
STUCK_LOOP = """
import logging, sys, threading
from fleet import bootstrap

def wait_for_a_lock_that_never_comes(stop):
    print("started", flush=True)
    threading.Event().wait()

logging.basicConfig(level=logging.INFO)
sys.exit(bootstrap.run_until_stopped(wait_for_a_lock_that_never_comes, name="stuck-loop", grace_s=1.0))
"""


def test_a_loop_that_does_not_stop_when_asked_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    log_path = tmp_path / "stuck.log"
    with open(log_path, "wb") as log:
        process = subprocesses.popen(
            [sys.executable, "-c", STUCK_LOOP],
            cwd=Path(__file__).resolve().parents[2],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "started" not in log_path.read_text() and process.poll() is None:
            assert time.monotonic() < deadline, "the loop did not start"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == bootstrap.EXIT_ERROR  # the 1 s bound is in the log's words
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    text = log_path.read_text()
    assert "stuck-loop did not stop within 1 s of being asked" in text, text
    assert "wait_for_a_lock_that_never_comes" in text, "the log must say where the loop was stuck"


@pytest.mark.parametrize(
    ("command", "prog"),
    [
        (["policy", "--once"], "servicecast"),
        (["route", "--once"], "servicecast"),
        (["score", "--once"], "servicecast"),
        (["train"], "servicecast"),
        (["customers", "list"], "servicecast"),
        (["simulate", "fleet", "--backfill"], "servicecast simulate"),
    ],
)
def test_every_command_starts_through_the_bootstrap_and_exits_2_on_a_bad_setting(
    command: list[str], prog: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", "mysql://db/servicecast")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"{prog}: invalid setting SERVICECAST_DATABASE_URL: "
        "must be a SQLAlchemy URL for sqlite:/// or postgresql+psycopg://"
    ]


def _closed_port_url(_tmp: Path) -> str:
    return f"postgresql+psycopg://app:hunter2@127.0.0.1:{services.free_port()}/servicecast"


def _under_a_file_url(tmp: Path) -> str:
    (tmp / "a-file").write_text("")
    return f"sqlite:///{tmp / 'a-file' / 'servicecast.db'}"


def _not_a_database_url(tmp: Path) -> str:
    (tmp / "notes.db").write_text("not a database\n" * 100)
    return f"sqlite:///{tmp / 'notes.db'}"


@pytest.mark.parametrize("url", [_closed_port_url, _under_a_file_url, _not_a_database_url])
@pytest.mark.parametrize("command", [["customers", "list"], ["db", "current"], ["db", "upgrade"]])
def test_a_database_that_cannot_be_opened_is_one_line_naming_it_not_a_traceback(
    url, command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", url(tmp_path))
    result = CliRunner().invoke(app, command)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == bootstrap.EXIT_ERROR
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("servicecast: cannot open the database SERVICECAST_DATABASE_URL=")
    assert "hunter2" not in result.stderr
