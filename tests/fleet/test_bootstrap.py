"""One start-up for every command: settings or exit 2, and a loop that SIGTERM ends and that may not die."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from typer.testing import CliRunner

from fleet import bootstrap
from servicecast.cli import app


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
