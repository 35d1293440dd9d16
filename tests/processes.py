"""Whether the processes a test started still run, and waiting until they have ended (Linux /proc)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.data import REPO
from tests.ingest.support import wait_until


def start_time(pid: int) -> int | None:
    """When process `pid` started (clock ticks after boot: a pid used again has another), if it runs."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] == "Z" else int(fields[19])  # a zombie has ended: only its parent's wait is due


def children(pid: int) -> list[int]:
    """The pids of the running children of `pid`."""
    tasks = Path(f"/proc/{pid}/task")
    return [int(child) for task in tasks.iterdir() for child in (task / "children").read_text().split()]


class Watched:
    """Processes identified by pid and start time, so that a pid used again is not taken for one of them."""

    def __init__(self, pids: list[int]) -> None:
        self.started = {pid: start_time(pid) for pid in pids}
        assert None not in self.started.values(), f"not running: {self.started}"

    def running(self) -> list[int]:
        """The pids of those still running."""
        return [pid for pid, started in self.started.items() if start_time(pid) == started]

    def wait_ended(self, timeout: float, what: str) -> None:
        """Poll until none runs (a bound, not a timing assertion); fail naming those that still do, and kill
        them (a failed test leaves no orphans either)."""
        try:
            wait_until(lambda: not self.running(), timeout, what)
        except AssertionError as exc:
            still = self.describe()
            self.kill()
            raise AssertionError(f"{exc}; still running: {still}") from None

    def describe(self) -> str:
        """The command line of each one still running."""
        return "; ".join(f"{pid}: {_command_line(pid)}" for pid in self.running())

    def kill(self) -> None:
        """SIGKILL those still running."""
        for pid in self.running():
            os.kill(pid, signal.SIGKILL)


@contextmanager
def killed_after(script: str, *args: str) -> Iterator[list[int]]:
    """Run `python -c script ARGS`, give the pids it prints on its first line, then SIGKILL it."""
    starter = subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        yield [int(pid) for pid in starter.stdout.readline().split()]
    finally:
        starter.kill()
        starter.wait(10)
        starter.stdout.close()


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return "(ended)"
