"""Storage at rest: bytes per reading hot (SQLite, PostgreSQL) and archived, the archive's rate, a long chart.

A simulated fleet at one message a minute is backfilled, its rollups refreshed, then every row archived.
Bytes per reading count everything: the telemetry table with its indexes (hot), every byte of every
archive file (all columns: ids, seqs, both timestamps, values). Every archived value and timestamp is read
back and compared with the hot rows (a digest per machine). The chart reads one machine's whole span
(43,200 rows for 30 days) through `panels.read_window`, which serves it from the hour rollups.

    python -m benchmarks.storage --json                      # 1,000 machines x 30 days (hours)
    python -m benchmarks.storage --machines 5 --days 2 --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from fleet import archive, history, migrate, panels, rollups
from fleet.db import make_engine
from fleet.tables import Machine
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate

POSTGRES_ADMIN_URL = os.environ.get(
    "SERVICECAST_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)
DIGEST_MACHINES = 10  # machines read back at a time for the round-trip check


def _say(message: str) -> None:
    print(f"storage: {message}", file=sys.stderr, flush=True)


def hot_bytes(engine: Engine) -> int:
    """Bytes of the telemetry table and its indexes."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # Partitioned (migration 0019): the parent holds nothing, its partitions hold the rows.
            query = "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('telemetry')"
            return int(conn.scalar(text(query)))
        return int(
            conn.scalar(
                text(
                    "SELECT sum(pgsize) FROM dbstat WHERE name IN "
                    "(SELECT name FROM sqlite_master WHERE tbl_name = 'telemetry')"
                )
            )
        )


def digest(frame) -> str:  # noqa: ANN001
    """A digest of rows' keys, timestamps (microseconds), firmware, extra and readings (exact reprs)."""
    h = hashlib.sha256()
    frame = frame.sort_values(["machine_id", "seq"])
    for column in ("machine_id", "seq"):
        h.update(frame[column].to_numpy("int64").tobytes())
    for column in ("ts", "received_at"):
        h.update(frame[column].to_numpy("datetime64[us]").view("int64").tobytes())
    h.update(repr(list(frame["fw"].where(frame["fw"].notna(), None))).encode())
    for extra, readings in zip(frame["extra"], frame["readings"], strict=True):
        h.update(json.dumps(extra, sort_keys=True).encode())
        h.update(
            json.dumps(
                {k: float(v) if v is not None else None for k, v in readings.items()}, sort_keys=True
            ).encode()
        )
    return h.hexdigest()


def digests(engine: Engine, machine_ids: list[int], read) -> dict[int, str]:  # noqa: ANN001
    """Digest per group of machines, from `read(conn, ids)`."""
    out = {}
    for i in range(0, len(machine_ids), DIGEST_MACHINES):
        group = machine_ids[i : i + DIGEST_MACHINES]
        with engine.connect() as conn:
            out[i] = digest(read(conn, group))
    return out


def chart_p95_ms(engine: Engine, machine_id: int, url: str, repeats: int, max_points: int) -> dict:
    """p95 of one machine's whole span as a chart, through the read path the API uses."""
    with engine.connect() as conn:
        first = history.read_rows(conn, machine_ids=[machine_id], archive_url=url)["ts"]
    start = first.min().floor("h").to_pydatetime()
    end = first.max().ceil("h").to_pydatetime() + timedelta(hours=1)
    times, rows = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        with engine.connect() as conn:
            window = panels.read_window(
                conn, machine_id=machine_id, start=start, end=end, max_points=max_points, archive_url=url
            )
        times.append((time.perf_counter() - t0) * 1000)
        rows = window.rows
    times.sort()
    return {
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
        "median_ms": round(statistics.median(times), 2),
        "rows": rows,
        "points": len(window.points),
        "days": round((end - start) / timedelta(days=1), 2),
    }


def measure(database_url: str, config: FleetConfig, archive_url: str, chart_repeats: int) -> dict:
    """Backfill, refresh rollups, archive everything; figures of one backend."""
    engine = make_engine(database_url)
    migrate.ensure_schema(engine)
    _say(f"{engine.dialect.name}: backfilling {config.machines} machines x {config.days} days")
    report = backfill(simulate(config), engine)
    readings = report.readings
    hot = hot_bytes(engine)
    with engine.connect() as conn:
        machine_ids = list(conn.scalars(select(Machine.id).order_by(Machine.id)))
    _say(f"{engine.dialect.name}: refreshing rollups")
    t0 = time.perf_counter()
    rollups.refresh(engine, archive_url=archive_url)
    rollup_s = time.perf_counter() - t0
    _say(f"{engine.dialect.name}: digests of the hot rows")
    before = digests(engine, machine_ids, lambda conn, ids: history.read_hot(conn, machine_ids=ids))
    _say(f"{engine.dialect.name}: archiving")
    moved = archive.run(engine, url=archive_url, before=datetime.now(UTC) + timedelta(days=3650))
    where = archive.location(archive_url)
    on_disk = sum(where.fs.size(p) for p in where.fs.find(where.root))
    _say(f"{engine.dialect.name}: reading the archive back")
    after = digests(
        engine, machine_ids, lambda conn, ids: archive.read(conn, url=archive_url, machine_ids=ids)
    )
    chart = chart_p95_ms(engine, machine_ids[0], archive_url, chart_repeats, max_points=500)
    engine.dispose()
    return {
        "backend": engine.dialect.name,
        "rows": report.rows,
        "readings": readings,
        "backfill_s": round(report.seconds, 1),
        "hot_bytes": hot,
        "hot_bytes_per_reading": round(hot / readings, 2),
        "rollup_refresh_s": round(rollup_s, 1),
        "rollup_refresh_rows_per_s": round(report.rows / rollup_s),
        "archive_files": moved.files,
        "archive_bytes": on_disk,
        "archive_bytes_per_reading": round(on_disk / readings, 3),
        "archive_s": round(moved.seconds, 1),
        "archive_readings_per_s": round(moved.readings / moved.seconds),
        "archived_readings": moved.readings,
        "lossless": before == after and moved.readings == readings,
        "chart": chart,
    }


class _Postgres:
    """A throwaway PostgreSQL database on the server of SERVICECAST_TEST_POSTGRES_URL."""

    def __enter__(self) -> str:
        self.name = f"sc_bench_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        return make_url(POSTGRES_ADMIN_URL).set(database=self.name).render_as_string(hide_password=False)

    def __exit__(self, *exc: object) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def main() -> None:
    """Run the benchmark on each backend; print figures (one JSON object with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--chart-repeats", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    config = FleetConfig(machines=args.machines, days=args.days, seed=0, step_seconds=60)
    results = {}
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            archive_url = str(Path(tmp) / "archive")
            if backend == "sqlite":
                results[backend] = measure(
                    f"sqlite:///{tmp}/storage.db", config, archive_url, args.chart_repeats
                )
            else:
                with _Postgres() as url:
                    results[backend] = measure(url, config, archive_url, args.chart_repeats)
    first = next(iter(results.values()))
    out = {
        "machines": args.machines,
        "days": args.days,
        "hot_bytes_per_reading": {b: r["hot_bytes_per_reading"] for b, r in results.items()},
        "archive_bytes_per_reading": first["archive_bytes_per_reading"],
        "archive_readings_per_s": {b: r["archive_readings_per_s"] for b, r in results.items()},
        "year_chart_p95_ms": {b: r["chart"]["p95_ms"] for b, r in results.items()},
        "lossless": all(r["lossless"] for r in results.values()),
        "backends": results,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
