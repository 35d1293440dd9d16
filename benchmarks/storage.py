"""Storage at rest: bytes per reading hot (SQLite, PostgreSQL) and archived, the archive's rate, a long chart.

A simulated fleet at one message a minute is backfilled, its rollups refreshed, then every row archived.
Bytes per reading count everything: the telemetry table with its indexes (hot), every byte of every
archive file (all columns: ids, seqs, both timestamps, values). Every archived value and timestamp is read
back and compared with the hot rows (columnar digests of every row, each side decoded by the store). The
chart reads one machine's whole span (43,200 rows for 30 days) through `panels.read_window`, which serves it
from the hour rollups.

    python -m benchmarks.storage --json                      # 1,000 machines x 30 days (~2 h)
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

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from fleet import archive, archive_format, history, migrate, panels, rollups
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


Sensors = dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (values, NaN unless a number; key sent)


def digest(frame: pd.DataFrame, sensors: Sensors) -> tuple[str, int, int]:
    """(digest, rows, readings) of rows' keys, timestamps (microseconds), firmware, extra and readings.

    Columnar and in (machine, seq) order, whatever order either side returns its rows in: every value's
    exact float64 bytes, and per sensor which rows sent its key and which sent a number (null, absent).
    """
    order = np.lexsort((frame["seq"].to_numpy(np.int64), frame["machine_id"].to_numpy(np.int64)))
    h = hashlib.sha256()
    for column in ("machine_id", "seq"):
        h.update(frame[column].to_numpy(np.int64)[order].tobytes())
    for column in ("ts", "received_at"):
        h.update(frame[column].to_numpy("datetime64[us]").view(np.int64)[order].tobytes())
    fw = frame["fw"].to_numpy(object)[order]
    h.update(orjson.dumps([f if isinstance(f, str) else None for f in fw]))
    h.update(orjson.dumps(frame["extra"].to_numpy(object)[order].tolist(), option=orjson.OPT_SORT_KEYS))
    readings = 0
    for name in sorted(sensors):
        values, sent = (a[order] for a in sensors[name])
        if not sent.any():
            continue  # a column no row of these sent: the other side may not have it
        number = ~np.isnan(values)
        for part in (name.encode(), b"\0", sent.tobytes(), number.tobytes(), np.where(number, values, 0.0)):
            h.update(part)
        readings += int(number.sum())
    return h.hexdigest(), len(order), readings


def hot_digest(conn: Connection, machine_ids: list[int]) -> tuple[str, int, int]:
    """`digest` of these machines' hot rows, decoded by the store (`history.read_hot`)."""
    frame = history.read_hot(conn, machine_ids=machine_ids)
    return digest(frame, archive_format.sensors_of_dicts(frame["readings"].tolist()))


def archive_digest(conn: Connection, machine_ids: list[int], url: str) -> tuple[str, int, int]:
    """`digest` of these machines' archived rows, decoded from the files by `archive_format`."""
    tables = archive.tables(conn, url=url, machine_ids=machine_ids)
    if not tables:
        return digest(history.empty(), {})
    frame = pd.concat([archive_format.fields(t) for t in tables], ignore_index=True)
    return digest(frame, _stacked([archive_format.sensors(t) for t in tables], [t.num_rows for t in tables]))


def _stacked(parts: list[Sensors], sizes: list[int]) -> Sensors:
    """Sensor columns of consecutive tables as one; a sensor a table lacks was not sent there."""
    out = {}
    for name in sorted(set().union(*parts)):
        pieces = [
            p.get(name, (np.full(n, np.nan), np.zeros(n, bool))) for p, n in zip(parts, sizes, strict=True)
        ]
        out[name] = (np.concatenate([v for v, _ in pieces]), np.concatenate([s for _, s in pieces]))
    return out


def digests(engine: Engine, machine_ids: list[int], read) -> dict[int, tuple[str, int, int]]:  # noqa: ANN001
    """`digest` per group of machines, from `read(conn, ids)`."""
    out = {}
    for i in range(0, len(machine_ids), DIGEST_MACHINES):
        group = machine_ids[i : i + DIGEST_MACHINES]
        with engine.connect() as conn:
            out[i] = read(conn, group)
    return out


def compared(before: dict, after: dict) -> dict:
    """Whether two `digests` agree, with the rows and readings each side holds."""
    return {
        "lossless": before == after,
        "rows": sum(d[1] for d in before.values()),
        "readings": sum(d[2] for d in before.values()),
        "rows_after": sum(d[1] for d in after.values()),
        "readings_after": sum(d[2] for d in after.values()),
    }


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
            points = len(window.points)  # a downsampled window's means are computed when asked for
        times.append((time.perf_counter() - t0) * 1000)
        rows = window.rows
    times.sort()
    return {
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
        "median_ms": round(statistics.median(times), 2),
        "rows": rows,
        "points": points,
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
    before = digests(engine, machine_ids, hot_digest)
    _say(f"{engine.dialect.name}: archiving")
    moved = archive.run(engine, url=archive_url, before=datetime.now(UTC) + timedelta(days=3650))
    where = archive.location(archive_url)
    on_disk = sum(where.fs.size(p) for p in where.fs.find(where.root))
    _say(f"{engine.dialect.name}: reading the archive back")
    after = digests(engine, machine_ids, lambda conn, ids: archive_digest(conn, ids, archive_url))
    check = compared(before, after)
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
        "lossless": check["lossless"] and moved.readings == readings == check["readings"],
        "lossless_rows": check["rows"],
        "lossless_readings": check["readings"],
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
