"""What starting a child through fleet.subprocesses.popen costs against subprocess.Popen.

nice .venv/bin/python -m benchmarks.child_start [--rss-mb 600] [--starts 40]

From a process that holds `--rss-mb` of touched memory (a pytest worker's size), starts /bin/true and waits
for it `--starts` times each way; prints the medians. `popen` runs a `preexec_fn` (PR_SET_PDEATHSIG), so
Python forks the whole process instead of using vfork; with `start_new_session` bash runs around the child.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable

from fleet import subprocesses

COMMAND = ["/bin/true"]


def median_ms(start: Callable[[], subprocess.Popen], starts: int) -> float:
    """The median milliseconds from starting a child to its end."""
    times = []
    for _ in range(starts):
        began = time.perf_counter()
        start().wait()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e3


def main() -> None:
    """Print the median start of each way, and its ratio to a plain Popen measured in the same round."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rss-mb", type=int, default=600)
    parser.add_argument("--starts", type=int, default=40)
    args = parser.parse_args()
    ballast = bytearray(args.rss_mb << 20)
    for page in range(0, len(ballast), 4096):
        ballast[page] = 1  # mapped, as a pytest worker's pages are: a fork copies their tables
    ways = {
        "subprocess.Popen": lambda: subprocess.Popen(COMMAND),
        "subprocesses.popen": lambda: subprocesses.popen(COMMAND),
        "subprocesses.popen(start_new_session=True)": lambda: subprocesses.popen(
            COMMAND, start_new_session=True
        ),
    }
    for round_ in range(3):
        plain = None
        for name, start in ways.items():
            ms = median_ms(start, args.starts)
            plain = plain or ms
            print(f"rss {args.rss_mb} MB, round {round_}: {name} {ms:.2f} ms ({ms / plain:.2f}x)")


if __name__ == "__main__":
    main()
