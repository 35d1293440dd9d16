"""What a `servicecast score --once` costs when it refuses to start: the database holds an erased customer.

nice .venv/bin/python -m benchmarks.refused_start [--starts 5]

A migrated SQLite database with customer acme, copied (the backup), then acme erased with a local archive
folder: the erasure ledger lists acme, and the copy, put back, holds it. Each start runs the real CLI on the
copy and must exit 1 naming acme; prints the median CPU seconds of the child (user + system) and its wall
time, beside `servicecast check-config` (a light command: the interpreter and the CLI) measured in the same
run, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fleet import erasure, migrate, registration
from fleet.db import make_engine

REPO = Path(__file__).resolve().parents[1]


def put_back(folder: Path) -> dict[str, str]:
    """The environment of a process on a database put back from before acme's erasure."""
    database, backup, archive = folder / "live.db", folder / "backup.db", str(folder / "archive")
    engine = make_engine(f"sqlite:///{database}")
    migrate.upgrade(engine)
    machines = [{"tenant": "acme", "machine": "p1", "machine_type": "pump"}]
    registration.register_machines(engine=engine, machines=machines, granted_by="benchmark")
    engine.dispose()
    with sqlite3.connect(database) as source, sqlite3.connect(backup) as target:
        source.backup(target)
    erasure.erase(
        engine, tenant="acme", confirm="acme", by="cli:benchmark", archive_url=archive, now=datetime.now(UTC)
    )
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    return env | {"SERVICECAST_DATABASE_URL": f"sqlite:///{backup}", "SERVICECAST_ARCHIVE_URL": archive}


def run(args: list[str], env: dict[str, str], *, refused: bool) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of one `servicecast ARGS`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "servicecast", *args], env=env, cwd=REPO, capture_output=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if refused != (done.returncode == 1 and b"acme" in done.stderr):
        raise SystemExit(f"servicecast {' '.join(args)}: exit {done.returncode}: {done.stderr.decode()}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu, wall


def main() -> None:
    """Print the medians of each command's starts and the refused score's ratio to check-config."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.refused_start", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--starts", type=int, default=5)
    starts = parser.parse_args().starts
    with tempfile.TemporaryDirectory() as tmp:
        env = put_back(Path(tmp))
        figures = {}
        for name, args, refused in (
            ("score --once", ["score", "--once"], True),
            ("check-config", ["check-config"], False),
        ):
            runs = [run(args, env, refused=refused) for _ in range(starts)]
            cpu, wall = statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs)
            figures[name] = cpu
            print(f"servicecast {name}: median of {starts}: {cpu:.2f} CPU-s, {wall:.2f} s wall")
    print(f"refused score / check-config: {figures['score --once'] / figures['check-config']:.2f}x CPU")


if __name__ == "__main__":
    main()
