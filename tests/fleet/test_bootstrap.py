"""The loop of `servicecast policy`: SIGTERM ends it cleanly, a loop that ends on its own is an error."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from fleet import bootstrap


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

    assert bootstrap.run_until_stopped(loop, name="test-loop") == bootstrap.EXIT_LOOP_DIED
    assert "test-loop ended without being asked to" in caplog.text
