"""What the erasure ledger's check costs each process start, by the number of entries the ledger holds.

nice .venv/bin/python -m benchmarks.erasure_ledger_start 0 100 1000 [--copy]

A migrated SQLite database and a local archive folder whose ledger holds N entries of customers the database
does not hold (the usual case: every erasure listed, none restored); prints the median of five checks, wall
time and this process's CPU time (steadier on a machine other work keeps busy).
--copy: the same entries in the ledger's copy too (SERVICECAST_ERASURE_LEDGER_COPY, a local folder).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fleet import archive, archive_store, erasure_ledger, migrate
from fleet.db import make_engine
from fleet.settings import get_settings


def median_ms(entries: int, *, copy: bool) -> tuple[float, float]:
    """The median wall and CPU time of `erasure_ledger.check_start` over five runs, in milliseconds."""
    with tempfile.TemporaryDirectory() as tmp:
        if copy:
            os.environ["SERVICECAST_ERASURE_LEDGER_COPY"] = str(Path(tmp) / "ledger-copy")
        get_settings.cache_clear()
        engine = make_engine(f"sqlite:///{tmp}/ledger.db")
        migrate.upgrade(engine)
        root = str(Path(tmp) / "archive")
        where = archive.location(root)
        store = archive_store.checked(engine, where)
        at = datetime.now(UTC).isoformat()
        for folder in [Path(tmp) / "archive", Path(tmp) / "ledger-copy"][: 1 + copy]:
            ledger = folder / store / erasure_ledger.FOLDER
            ledger.mkdir(parents=True)
            for i in range(entries):
                entry = erasure_ledger.Entry(10_000 + i, at, "0" * 64, f"erased-{i:012x}", at)
                (ledger / f".{entry.pseudonym}.json").write_text(json.dumps(entry.__dict__))
        walls, cpus = [], []
        for _ in range(5):
            started, cpu = time.perf_counter(), time.process_time()
            erasure_ledger.check_start(engine, root, process="benchmark")
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
        engine.dispose()
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def entries_count(text: str) -> int:
    """A number of ledger entries as given on the command line: a whole number, 0 or more."""
    if not (text.isascii() and text.isdigit()):  # "²" is a digit to str.isdigit, not to int()
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of entries (0 or more)")
    return int(text)


def main(argv: list[str] | None = None) -> None:
    """Run the check for each number of entries asked for (0, 100 and 1000 when none is)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.erasure_ledger_start", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "entries",
        metavar="ENTRIES",
        nargs="*",
        type=entries_count,
        default=[0, 100, 1000],
        help="numbers of ledger entries to measure with (default: 0 100 1000)",
    )
    parser.add_argument("--copy", action="store_true", help="the same entries in the ledger's copy too")
    args = parser.parse_args(argv)
    for n in args.entries:
        print(f"{n} entries{' (and the copy)' if args.copy else ''}: check at start, median of 5: ", end="")
        wall, cpu = median_ms(n, copy=args.copy)
        print(f"{wall:.1f} ms wall, {cpu:.1f} ms CPU")


if __name__ == "__main__":
    main()
