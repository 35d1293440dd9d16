"""Export memory: a customer's ZIP streamed to disk, peak memory against the rows exported.

    python -m benchmarks.export --json                           # 1,000 machines x 7 days: ~10 M rows
    python -m benchmarks.export --machines 20 --days 5 --json

The fleet is backfilled as one customer (the simulator's tenants are merged into the first), then exported
through `fleet.export.stream`; peak RSS is sampled during the export and compared with the RSS before it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import select, text

from fleet import export, migrate
from fleet.db import make_engine
from fleet.tables import Customer
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate


def rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    """Backfill, merge into one customer, export; print rows, seconds and memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/export.db")
        migrate.ensure_schema(engine)
        report = backfill(simulate(FleetConfig(machines=args.machines, days=args.days, seed=0)), engine)
        with engine.begin() as conn:
            first = conn.scalar(select(Customer.id).order_by(Customer.id).limit(1))
            for table in ("machines", "telemetry", "labels"):
                conn.execute(text(f"UPDATE {table} SET customer_id = :c"), {"c": first})
            tenant = conn.scalar(select(Customer.tenant).where(Customer.id == first))
        before = rss_bytes()
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_bytes())
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        out = Path(tmp) / "export.zip"
        with out.open("wb") as f:
            for chunk in export.stream(engine, tenant=tenant, archive_url=str(Path(tmp) / "archive")):
                f.write(chunk)
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        figures = {
            "machines": args.machines,
            "days": args.days,
            "rows": report.rows,
            "export_s": round(seconds, 1),
            "rows_per_s": round(report.rows / seconds),
            "zip_bytes": out.stat().st_size,
            "rss_before_mb": round(before / 2**20, 1),
            "rss_peak_mb": round(peak[0] / 2**20, 1),
            "rss_growth_mb": round((peak[0] - before) / 2**20, 1),
        }
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
