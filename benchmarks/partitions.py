"""Telemetry write rate on PostgreSQL, unpartitioned (migration 0018) against partitioned by week (head).

Both databases get the same rows through `fleet.telemetry.insert_telemetry`, in rounds that alternate which
goes first, so that a loaded machine slows both alike. The unpartitioned arm writes as before migration 0019
(one INSERT … ON CONFLICT on the key's index), the partitioned arm as now (a lock per machine, then the
lookup in every partition). Prints rows/s per round and the median ratio.

    python -m benchmarks.partitions --machines 50 --rounds 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

from benchmarks.storage import _Postgres
from fleet import dialect, migrate, registration, telemetry
from fleet.db import make_engine
from fleet.tables import Machine


def _rows(ids: list[tuple[int, int]], *, first_seq: int, per_machine: int, start: datetime) -> list[dict]:
    rows = []
    for customer_id, machine_id in ids:
        for seq in range(first_seq, first_seq + per_machine):
            ts = start + timedelta(seconds=seq)
            readings = {"temperature_c": 60.0 + seq % 7, "vibration_mm_s": 2.0 + seq % 3 / 10}
            rows.append(
                {
                    "customer_id": customer_id,
                    "machine_id": machine_id,
                    "seq": seq,
                    "ts": ts,
                    "readings": readings,
                    "fw": None,
                    "extra": None,
                    "received_at": ts,
                }
            )
    return sorted(rows, key=lambda r: r["ts"])  # as ingest batches arrive: machines interleaved


def main() -> None:
    """Write the same rounds into both schemas; print rows/s and the partitioned/unpartitioned ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-machine", type=int, default=200, help="rows per machine and round")
    parser.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    args = parser.parse_args()
    start = datetime.now(UTC) - timedelta(days=1)
    rates: dict[str, list[float]] = {"0018": [], "head": []}
    with _Postgres() as url_a, _Postgres() as url_b:
        engines = {}
        for revision, url in (("0018", url_a), ("head", url_b)):
            engine = make_engine(url)
            migrate.upgrade(engine, revision)
            machines = [
                {"tenant": "acme", "machine": f"m{i}", "machine_type": "pump"} for i in range(args.machines)
            ]
            registration.register_machines(engine=engine, machines=machines, granted_by="bench")
            with engine.connect() as conn:
                ids = [
                    tuple(r)
                    for r in conn.execute(
                        Machine.__table__.select().with_only_columns(Machine.customer_id, Machine.id)
                    )
                ]
            engines[revision] = (engine, ids)
        for r in range(args.rounds):
            order = ("0018", "head") if r % 2 == 0 else ("head", "0018")
            for revision in order:
                engine, ids = engines[revision]
                rows = _rows(ids, first_seq=r * args.per_machine, per_machine=args.per_machine, start=start)
                # The write path before 0019 is insert_new with telemetry not listed as partitioned.
                partitioned, dialect._PARTITIONED = (
                    dialect._PARTITIONED,
                    (dialect._PARTITIONED if revision == "head" else {}),
                )
                try:
                    began = time.perf_counter()
                    for at in range(0, len(rows), args.batch):
                        with engine.begin() as conn:
                            telemetry.insert_telemetry(conn, rows[at : at + args.batch])
                    rates[revision].append(len(rows) / (time.perf_counter() - began))
                finally:
                    dialect._PARTITIONED = partitioned
        for engine, _ in engines.values():
            engine.dispose()
    ratios = [h / u for h, u in zip(rates["head"], rates["0018"], strict=True)]
    print(
        json.dumps(
            {
                "rows_per_s_unpartitioned": [round(x) for x in rates["0018"]],
                "rows_per_s_partitioned": [round(x) for x in rates["head"]],
                "median_ratio_partitioned_to_unpartitioned": round(statistics.median(ratios), 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
