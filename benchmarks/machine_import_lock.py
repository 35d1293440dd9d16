"""How long `machines import` holds SQLite's write lock, and what a writer beside it (an ingester) waits.

    python -m benchmarks.machine_import_lock --machines 10000 100000

For each size: a fresh migrated SQLite file, a file of that many good machines (benchmarks.imports'
good_machines_csv), imported in this process by fleet.machine_import while a thread commits a small write
every 20 ms on its own engine with the production busy timeout (5 s), as an ingester's batches would. Prints
the import's wall and CPU seconds, its transactions holding the write lock and the longest (BEGIN
IMMEDIATE to COMMIT), and the writer's longest wait and its writes refused ("database is locked").
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import OperationalError

from benchmarks.imports import good_machines_csv
from fleet import machine_import, migrate
from fleet.csv_import import ColumnMap
from fleet.db import WRITE_LOCK_OPTION, make_engine

WRITE_EVERY_S = 0.02
SCRATCH = "bench_writer"  # the writer's own table


class Held:
    """The import engine's write-lock transactions: BEGIN IMMEDIATE to COMMIT or ROLLBACK, each in seconds."""

    def __init__(self, engine: Engine) -> None:
        self.spans: list[float] = []
        self._began = 0.0
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)

    def _begin(self, conn: Connection) -> None:
        if conn.get_execution_options().get(WRITE_LOCK_OPTION):  # BEGIN IMMEDIATE: the write lock from here
            self._began = time.perf_counter()

    def _end(self, _conn: object) -> None:
        if self._began:
            self.spans.append(time.perf_counter() - self._began)
            self._began = 0.0


def writer(url: str, stop: threading.Event, waits: list[float], refused: list[str]) -> None:
    """An ingester-like writer: a short write transaction every WRITE_EVERY_S, the production busy timeout."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {SCRATCH} (id INTEGER PRIMARY KEY, at REAL)")
    try:
        while not stop.wait(WRITE_EVERY_S):
            started = time.perf_counter()
            try:
                with engine.begin() as conn:  # its first statement a write, as an ingester's batch
                    conn.exec_driver_sql(f"INSERT INTO {SCRATCH} (at) VALUES (?)", (started,))
            except OperationalError as exc:
                refused.append(str(exc.orig))
            waits.append(time.perf_counter() - started)
    finally:
        engine.dispose()


def measure(machines: int, folder: Path) -> dict:
    """Import `machines` good machines beside the writer; the figures of one run."""
    url = f"sqlite:///{folder / f'lock-{machines}.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    path = good_machines_csv(folder / f"machines-{machines}.csv", machines)
    held = Held(engine)
    stop, waits, refused = threading.Event(), [], []
    thread = threading.Thread(target=writer, args=(url, stop, waits, refused))
    thread.start()
    wall, cpu = time.perf_counter(), time.process_time()
    report = machine_import.import_machines(engine=engine, path=path, mapping=ColumnMap(tenant="acme"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stop.set()
    thread.join()
    engine.dispose()
    return {
        "machines": machines,
        "new": report.new,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),  # the process's: the writer's thread too (a few ms a write)
        "transactions": len(held.spans),
        "longest_lock_s": round(max(held.spans, default=0.0), 3),
        "writer_writes": len(waits),
        "writer_longest_wait_s": round(max(waits, default=0.0), 3),
        "writer_refused": len(refused),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="servicecast-lock-") as folder:
        for machines in args.machines:
            print(measure(machines, Path(folder)), flush=True)


if __name__ == "__main__":
    main()
