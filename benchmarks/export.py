"""Export memory: a customer's ZIP streamed to disk, peak memory against the rows exported.

    python -m benchmarks.export --json                      # 1,000 machines x 1 day, repeated: 10.08 M rows
    python -m benchmarks.export --rows 1000000 --json       # 1,000 machines x 1 day: 1.44 M rows
    python -m benchmarks.export --machines 20 --days 5 --rows 0 --json

The fleet is backfilled as one customer (the simulator's tenants are merged into the first). Simulating
10 M rows takes hours on this machine, so the simulated days are repeated after themselves in SQL
(`repeat`: seq and times shifted by the span) until the table holds `--rows`. Then the customer is
exported through `fleet.export.stream`; peak RSS is sampled during the export and compared with the RSS
before it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from fleet import export, migrate
from fleet.db import make_engine
from fleet.tables import Customer, Telemetry
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate


def rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def repeat(engine: Engine, *, copies: int, step_seconds: int) -> int:
    """The simulated rows `copies - 1` more times after themselves (seq and times shifted); rows in the table.

    SQLite's text timestamps are shifted by `strftime` (to the millisecond, padded to microseconds as stored).
    """
    with engine.connect() as conn:
        span = int(conn.scalar(select(func.max(Telemetry.seq))) or 0)
    ts, received = (f"strftime('%Y-%m-%d %H:%M:%f', {c}, :shift) || '000'" for c in ("ts", "received_at"))
    for k in range(1, copies):
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO telemetry (customer_id, machine_id, seq, ts, readings, fw, extra, "
                    f"received_at) SELECT customer_id, machine_id, seq + :dseq, {ts}, "
                    f"readings, fw, extra, {received} FROM telemetry "
                    "WHERE seq <= :span"
                ),
                {"dseq": k * span, "shift": f"+{k * span * step_seconds} seconds", "span": span},
            )
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Telemetry)))


def main() -> None:
    """Backfill, merge into one customer, export; print rows, seconds and memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--days", type=float, default=1.0, help="simulated days")
    parser.add_argument(
        "--rows", type=int, default=10_000_000, help="repeat the simulated days up to this many rows (0: no)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/export.db")
        migrate.ensure_schema(engine)
        config = FleetConfig(machines=args.machines, days=args.days, seed=0)
        t0 = time.perf_counter()
        report = backfill(simulate(config), engine)
        backfill_s = time.perf_counter() - t0
        copies = max(1, -(-args.rows // report.rows)) if args.rows else 1
        rows = repeat(engine, copies=copies, step_seconds=config.step_seconds)
        fill_s = time.perf_counter() - t0
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
        with zipfile.ZipFile(out) as written:
            exported = json.loads(written.read("manifest.json"))["telemetry"]["rows"]
        figures = {
            "machines": args.machines,
            "days": args.days,
            "copies": copies,
            "rows": rows,
            "exported_rows": exported,
            "fill_s": round(fill_s, 1),
            "backfill_s": round(backfill_s, 1),
            "repeat_s": round(fill_s - backfill_s, 1),
            "export_s": round(seconds, 1),
            "rows_per_s": round(rows / seconds),
            "zip_bytes": out.stat().st_size,
            "rss_before_mb": round(before / 2**20, 1),
            "rss_peak_mb": round(peak[0] / 2**20, 1),
            "rss_growth_mb": round((peak[0] - before) / 2**20, 1),
        }
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
