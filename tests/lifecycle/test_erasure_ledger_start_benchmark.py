"""`python -m benchmarks.erasure_ledger_start`: --help prints its usage; a bad argument: one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """The benchmark run as a README reader runs it, with these arguments."""
    command = [sys.executable, "-m", "benchmarks.erasure_ledger_start", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_help_prints_the_usage_and_runs_nothing() -> None:
    run = _run("--help")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage:") and "--copy" in run.stdout and "ENTRIES" in run.stdout
    assert "check at start" not in run.stdout and run.stderr == ""


@pytest.mark.parametrize(
    ("arg", "said"),
    [("many", "'many' is not a whole number"), ("-5", "'-5' is not a whole number"), ("--cpoy", "--cpoy")],
)
def test_a_bad_argument_is_one_line_and_exit_2(arg: str, said: str) -> None:
    run = _run("0", arg)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "check at start" not in run.stdout
    last = run.stderr.splitlines()[-1]
    assert last.startswith("python -m benchmarks.erasure_ledger_start: error:") and said in last
