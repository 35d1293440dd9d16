"""CPU per telemetry-range answer in process: `window_json` on random machines of the API benchmark db.

python -m benchmarks.telemetry_window --db /tmp/api-bench.db [--batches 20] [--per-batch 50] [--points 200]

The database is one `python -m benchmarks.api --db FILE` filled; the window is its telemetry-range round's
(1,000 minutes from its start). Prints the CPU time per answer, min / p10 / median over the batches: the
minimum moves far less with the machine's load than the server benchmark's latency does.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from api import telemetry_view
from benchmarks.api import LONG_CODE, START
from fleet.db import make_engine
from fleet.tables import Machine


def main() -> None:
    """Time `window_json` batch by batch on a read-only engine, as the API reads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--per-batch", type=int, default=50)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--minutes", type=int, default=1000)
    args = parser.parse_args()
    if not args.db.is_file():  # else SQLite makes an empty file, and the first query fails on a missing table
        parser.error(f"no database {args.db}: fill one with python -m benchmarks.api --db {args.db}")
    engine = make_engine(f"sqlite:///{args.db}", read_only=True)
    end = START + timedelta(minutes=args.minutes)
    with engine.connect() as conn:
        ids = list(conn.scalars(select(Machine.id).where(Machine.code != LONG_CODE)))
        rng = random.Random(11)
        batches = [[rng.choice(ids) for _ in range(args.per_batch)] for _ in range(args.batches)]
        per_answer = []
        for batch in batches * 2:  # each batch twice: the first pass also warms the pages
            started = time.process_time()
            for machine in batch:
                telemetry_view.window_json(
                    conn, machine_id=machine, start=START, end=end, max_points=args.points, archive_url="-"
                )
            per_answer.append((time.process_time() - started) / len(batch) * 1e3)
    engine.dispose()
    per_answer.sort()
    figures = {
        "min": per_answer[0],
        "p10": per_answer[len(per_answer) // 10],
        "median": per_answer[len(per_answer) // 2],
    }
    print(
        json.dumps({"cpu_ms_per_answer": {k: round(v, 3) for k, v in figures.items()}, "points": args.points})
    )


if __name__ == "__main__":
    main()
