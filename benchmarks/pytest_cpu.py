"""A pytest plugin: each test's CPU seconds, its process's and its reaped children's, beside its wall time.

CI=true SERVICECAST_TEST_CPU_DIR=/tmp/cpu .venv/bin/python -m pytest -p benchmarks.pytest_cpu tests/bridge
python -m benchmarks.pytest_cpu /tmp/cpu: CPU and wall per module and the slowest tests

pytest's --durations shows wall time only; on a loaded machine that is mostly other processes' turn. A line
per test (setup, call and teardown; its start as epoch seconds) goes to DIR/<worker>.jsonl. The PostgreSQL
server's work is not in it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest


def _cpu() -> tuple[float, float]:
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Time the test's whole protocol and append its line."""
    started, wall, (own, children) = time.time(), time.monotonic(), _cpu()
    yield
    after_own, after_children = _cpu()
    folder = Path(os.environ.get("SERVICECAST_TEST_CPU_DIR", "var/test-cpu"))
    folder.mkdir(parents=True, exist_ok=True)
    line = {
        "id": item.nodeid,
        "start": started,
        "wall": time.monotonic() - wall,
        "own": after_own - own,
        "children": after_children - children,
    }
    with open(folder / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.jsonl", "a") as out:
        out.write(json.dumps(line) + "\n")


def report(folder: Path, slowest: int = 15) -> str:
    """CPU and wall seconds per module, most CPU first, then the tests of most CPU."""
    tests = [json.loads(line) for path in folder.glob("*.jsonl") for line in path.read_text().splitlines()]
    modules: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for test in tests:
        module = modules[test["id"].split("::")[0]]
        for i, value in enumerate((1, test["wall"], test["own"], test["children"])):
            module[i] += value
    lines = [f"{'module':64} {'tests':>5} {'wall':>8} {'own':>7} {'child':>7} {'cpu':>7}"]
    for name, (n, wall, own, children) in sorted(modules.items(), key=lambda kv: -kv[1][2] - kv[1][3]):
        lines.append(f"{name:64} {n:5} {wall:8.1f} {own:7.1f} {children:7.1f} {own + children:7.1f}")
    lines.append("slowest by CPU:")
    for test in sorted(tests, key=lambda t: -t["own"] - t["children"])[:slowest]:
        lines.append(f"  {test['own'] + test['children']:6.1f} CPU-s {test['wall']:7.1f} s  {test['id']}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1])))
