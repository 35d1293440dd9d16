"""Child processes that die with the process that started them: no orphan keeps a port or a session."""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# Run by bash around a command started in a session of its own: a watchdog in the new process group waits
# for EOF on a pipe whose other end only the starting process holds, then signals the whole group. Being a
# member, it keeps the group's id from being reused by another group before then.
_GROUP_WATCHDOG = (
    'fd=$1; shift; ( trap "" INT HUP; read -r -u "$fd" _; kill -s TERM 0 ) </dev/null >/dev/null 2>&1 & '
    'exec {fd}<&-; exec "$@"'
)


@functools.cache
def _prctl():  # noqa: ANN202 - a ctypes function pointer
    return ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Have the kernel send `sig` to this process when `parent_pid` ends (Linux); exit now if it has.

    The kernel sends it when the parent's thread that started this process ends, not only the parent: start
    children from a thread that lives as long as the parent (its main thread).
    """
    if sys.platform == "linux":
        _prctl()(_PR_SET_PDEATHSIG, int(sig))
    if os.getppid() != parent_pid:  # it ended before the line above took effect
        os._exit(1)


def popen(args: Sequence[str], *, death_signal: int = signal.SIGTERM, **kwargs) -> subprocess.Popen:
    """`subprocess.Popen` of a child that gets `death_signal` when this process ends, even by SIGKILL.

    With `start_new_session=True` the child's whole process group gets SIGTERM then, so that what the child
    leaves running (a shell's background jobs) goes too. Only from the main thread: the kernel signals the
    child when the thread that started it ends.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("start a child from the main thread: it would end with the thread that started it")
    if sys.platform == "linux":
        _prctl()  # looked up here: the forked child only calls it
    tie = functools.partial(die_with_parent, os.getpid(), death_signal)
    if not kwargs.get("start_new_session"):
        return subprocess.Popen(args, preexec_fn=tie, **kwargs)
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(
            ["bash", "-c", _GROUP_WATCHDOG, "bash", str(read_end), *args],
            pass_fds=(*kwargs.pop("pass_fds", ()), read_end),
            preexec_fn=tie,
            **kwargs,
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    weakref.finalize(process, os.close, write_end)  # the group lives no longer than its Popen
    return process
