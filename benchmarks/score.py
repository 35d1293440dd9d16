"""Rescoring throughput: every machine of a simulated fleet scored from the telemetry store (SQLite).

python -m benchmarks.score --machines 10000 --json [--days 8] [--database-url URL] [--train-machines 300]

Steps: simulate `--machines` machines for `--days` days at hourly steps and backfill them into the store;
train one model per machine type on a separate, smaller seeded fleet and register it; then time one
`score_once` pass over a store no pass has scored yet (no state, nothing cached): find the due machines,
read each one's last `history_hours_read` of telemetry (the features' lookback), features, risk + mode,
RUL, trend ETA (vectorised Holt for all, statsmodels Holt for the riskiest 5 per batch), anomaly score,
per-sensor contributions and explanation, predictions written and watermarks moved.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from fleet import migrate
from fleet.db import make_engine
from models import scoring, versions
from models.training import train_type
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate


def train_all(engine, machines: int, seed: int) -> dict[str, str]:  # noqa: ANN001
    """Fit and register one model per type on a separate fleet (60 days, hourly)."""
    run = simulate(FleetConfig(machines=machines, days=60, seed=seed + 1000, step_seconds=3600))
    panel = run.telemetry(max_rows=20_000_000)
    registered = {}
    for mtype, part in panel.groupby("machine_type", observed=True):
        part = part.dropna(axis=1, how="all").reset_index(drop=True)
        f = run.failures[run.failures["machine_type"] == mtype]
        m = run.maintenance[run.maintenance["machine_type"] == mtype]
        model, metrics = train_type(part, f, m, max_rows=50_000, max_iter=100)
        registered[str(mtype)] = versions.register(
            engine, model=model, machine_type=str(mtype), metrics=metrics
        )
    return registered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--train-machines", type=int, default=300)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temp dir")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="servicecast-score-")
    url = args.database_url or f"sqlite:///{Path(tmp.name) / 'score.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    started = time.perf_counter()
    run = simulate(FleetConfig(machines=args.machines, days=args.days, seed=args.seed, step_seconds=3600))
    stored = backfill(run, engine)
    backfill_s = time.perf_counter() - started
    started = time.perf_counter()
    registered = train_all(engine, args.train_machines, args.seed)
    train_s = time.perf_counter() - started
    report = scoring.score_once(engine=engine)
    result = {
        "benchmark": "score",
        "database": engine.dialect.name,
        "machines": args.machines,
        "telemetry_rows": stored.rows,
        "history_hours_read": {
            t: scoring.history_hours(m) for t, (_, m) in versions.load_active(engine).items()
        },
        "scored": report.machines,
        "statuses": dict(report.statuses),
        "seconds": round(report.seconds, 2),
        "machines_per_s": round(report.machines_per_s, 1),
        "backfill_seconds": round(backfill_s, 1),
        "train_seconds": round(train_s, 1),
        "versions": registered,
        "when": pd.Timestamp.now(tz="UTC").isoformat(),
    }
    engine.dispose()
    tmp.cleanup()
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
