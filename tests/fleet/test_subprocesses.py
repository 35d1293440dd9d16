"""A child started through fleet.subprocesses ends when the process that started it is killed with SIGKILL."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from fleet import subprocesses
from tests.processes import Watched, killed_after

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


def test_a_child_ends_when_its_parent_is_killed() -> None:
    with killed_after(STARTER, "plain", sys.executable, "-c", "import time; time.sleep(600)") as pids:
        child = Watched(pids)
    child.wait_ended(30, "the child of a killed parent to end")


def test_what_a_child_in_a_session_of_its_own_leaves_running_ends_with_the_parent_and_not_before() -> None:
    # The shell exits at once (its output read to the end: the watchdog holds none of its pipes) and leaves
    # its background job running while the starter lives.
    with killed_after(STARTER, "group", "bash", "-c", "sleep 600 >/dev/null & echo $!") as pids:
        left = Watched(pids)
        assert left.running()
    left.wait_ended(30, "the background job of a killed parent's child to end")


def test_a_child_is_not_started_from_another_thread_which_would_take_it_along_when_it_ends() -> None:
    with ThreadPoolExecutor(1) as pool:
        refused = pool.submit(subprocesses.popen, ["true"]).exception()
    assert isinstance(refused, RuntimeError) and "main thread" in str(refused)
