"""What the erasure ledger's check costs each process start, by the number of entries the ledger holds.

nice .venv/bin/python -m benchmarks.erasure_ledger_start 0 100 1000

A migrated SQLite database and a local archive folder whose ledger holds N entries of customers the database
does not hold (the usual case: every erasure listed, none restored); prints the median of five checks.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fleet import archive, archive_store, erasure_ledger, migrate
from fleet.db import make_engine


def median_ms(entries: int) -> float:
    """The median wall time of `erasure_ledger.check_start` over five runs, in milliseconds."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/ledger.db")
        migrate.upgrade(engine)
        root = str(Path(tmp) / "archive")
        where = archive.location(root)
        store = archive_store.checked(engine, where)
        ledger = Path(where.path(f"{store}/{erasure_ledger.FOLDER}"))
        ledger.mkdir(parents=True)
        at = datetime.now(UTC).isoformat()
        for i in range(entries):
            entry = erasure_ledger.Entry(10_000 + i, at, "0" * 64, f"erased-{i:012x}", at)
            (ledger / f".{entry.pseudonym}.json").write_text(json.dumps(entry.__dict__))
        times = []
        for _ in range(5):
            started = time.perf_counter()
            erasure_ledger.check_start(engine, root, process="benchmark")
            times.append(time.perf_counter() - started)
        engine.dispose()
    return statistics.median(times) * 1000


if __name__ == "__main__":
    for n in [int(arg) for arg in sys.argv[1:]] or [0, 100, 1000]:
        print(f"{n} entries: check at start, median of 5: {median_ms(n):.1f} ms")
