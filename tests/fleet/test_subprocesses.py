"""A child started through fleet.subprocesses ends when the process that started it is killed with SIGKILL."""

from __future__ import annotations

import subprocess
import sys

from tests.data import REPO
from tests.processes import Watched

# Starts a child through the helper, prints its pid (or what it printed) and waits to be killed.
STARTER = """
import subprocess, sys, time
from fleet import subprocesses
args = sys.argv[2:]
if sys.argv[1] == "group":
    shell = subprocesses.popen(args, start_new_session=True, stdout=subprocess.PIPE, text=True)
    print(shell.communicate()[0].strip(), flush=True)
else:
    print(subprocesses.popen(args).pid, flush=True)
time.sleep(600)
"""


def _started_by_a_killed_parent(mode: str, *args: str) -> Watched:
    """Start `args` through the helper in a process of its own; SIGKILL that process once it has."""
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, mode, *args], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        child = Watched([int(starter.stdout.readline())])
    finally:
        starter.kill()
        starter.wait(10)
        starter.stdout.close()
    return child


def test_a_child_ends_when_its_parent_is_killed() -> None:
    child = _started_by_a_killed_parent("plain", sys.executable, "-c", "import time; time.sleep(600)")
    try:
        child.wait_ended(30, "the child of a killed parent to end")
    finally:
        child.kill()


def test_what_a_child_in_a_session_of_its_own_leaves_running_ends_with_the_parent_and_not_before() -> None:
    # The shell exits at once (its output read to the end: the watchdog holds none of its pipes) and leaves
    # its background job to the starter, which holds it until it is killed.
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, "group", "bash", "-c", "sleep 600 >/dev/null & echo $!"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        left = Watched([int(starter.stdout.readline())])
        assert starter.poll() is None and left.running()
    finally:
        starter.kill()
        starter.wait(10)
        starter.stdout.close()
    try:
        left.wait_ended(30, "the background job of a killed parent's child to end")
    finally:
        left.kill()
