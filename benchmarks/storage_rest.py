"""`python -m benchmarks.storage_rest DB ARCHIVE --json`: finish a storage run on a backfilled database.

For the full size, where `benchmarks.storage`'s read-back of every row takes hours: on a database it left
(backfilled, rolled up; a SQLite file, or a database URL such as the PostgreSQL `sc_bench_…` database of a
killed run), measures the hot bytes, archives every row, checks the round trip of every row (or of a seeded
random sample of machines, `--sample N`) and serves the long chart, with the benchmark's own functions.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from benchmarks.storage import archive_digest, chart_p95_ms, compared, digests, hot_bytes, hot_digest
from fleet import archive
from fleet.db import make_engine
from fleet.tables import Machine, Telemetry


def _say(message: str) -> None:
    print(f"storage_rest: {datetime.now(UTC):%H:%M:%S} {message}", file=sys.stderr, flush=True)


def main() -> None:
    """Measure, archive, check every row (or a sample), chart; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", help="path of the SQLite database, or a database URL")
    parser.add_argument("archive", help="archive folder (empty)")
    parser.add_argument("--sample", type=int, default=0, help="machines whose rows are checked (0: all)")
    parser.add_argument(
        "--hot-digests",
        type=Path,
        help="file of the hot rows' digests: if missing, compute them, write it and stop; if present, use it"
        " instead of reading the hot rows (they must not have changed since: no writes while in between)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    engine = make_engine(args.db if "://" in args.db else f"sqlite:///{args.db}")
    with engine.connect() as conn:
        machine_ids = list(conn.scalars(select(Machine.id).order_by(Machine.id)))
        rows = conn.scalar(select(func.count()).select_from(Telemetry))
    hot = hot_bytes(engine)
    _say(f"{rows} rows, {hot} hot bytes")
    sample = sorted(random.Random(0).sample(machine_ids, args.sample)) if args.sample else machine_ids
    saved = args.hot_digests
    digest_hot_s = None  # measured by the run that saved them
    if saved and saved.exists():
        before = {int(k): tuple(v) for k, v in json.loads(saved.read_text()).items()}
    else:
        t0 = time.perf_counter()
        before = digests(engine, sample, hot_digest)
        digest_hot_s = round(time.perf_counter() - t0, 1)
    _say(f"digests of the hot rows of {len(sample)} machines ({digest_hot_s} s)")
    if saved and not saved.exists():
        saved.write_text(json.dumps(before))
        print(json.dumps({"rows": rows, "hot_bytes": hot, "digest_hot_s": digest_hot_s}))
        return
    moved = archive.run(engine, url=args.archive, before=datetime.now(UTC) + timedelta(days=3650))
    _say(f"archived {moved.readings} readings in {moved.seconds:.1f} s")
    where = archive.location(args.archive)
    on_disk = sum(where.fs.size(p) for p in where.fs.find(where.root))
    t0 = time.perf_counter()
    after = digests(engine, sample, lambda conn, ids: archive_digest(conn, ids, args.archive))
    digest_archive_s = time.perf_counter() - t0
    check = compared(before, after)
    _say(f"digests of the archive in {digest_archive_s:.1f} s: {check}")
    with engine.connect() as conn:
        left = conn.scalar(select(func.count()).select_from(Telemetry))
    t0 = time.perf_counter()
    chart = chart_p95_ms(engine, machine_ids[0], args.archive, 50, max_points=500)
    readings = moved.readings
    out = {
        "backend": engine.dialect.name,
        "machines": len(machine_ids),
        "rows": rows,
        "readings": readings,
        "hot_bytes": hot,
        "hot_bytes_per_reading": round(hot / readings, 2),
        "archive_files": moved.files,
        "archive_bytes": on_disk,
        "archive_bytes_per_reading": round(on_disk / readings, 3),
        "archive_s": round(moved.seconds, 1),
        "archive_readings_per_s": round(readings / moved.seconds),
        "hot_rows_left": left,
        "lossless_machines": len(sample),
        "lossless": check["lossless"]
        and (bool(args.sample) or (check["rows"], check["readings"]) == (rows, readings)),
        "lossless_rows": check["rows"],
        "lossless_readings": check["readings"],
        "digest_hot_s": digest_hot_s,
        "hot_digests_from": str(saved) if saved else None,
        "digest_archive_s": round(digest_archive_s, 1),
        "chart": chart,
        "chart_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
