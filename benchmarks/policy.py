"""Policy throughput: one `policy.run_once` over a scoring pass's worth of predictions, one per machine.

python -m benchmarks.policy [--machines 10000] [--database-url URL] [--json] [--profile 20] [--score]
    [--keep-store DIR | --from-store DIR] [--closed-offers N]

The store (`benchmarks.policy_store`): `--machines` machines of three types, 20 to a customer, 80 % of
customers granting `offers`, a quarter each in no/small/mid/key-account segment; one model per type
trained on a small seeded fleet and registered (its threshold is the alert threshold); three months of past
passes under the shipped first-fit catalog whose offers were approved, delivered and answered (a quarter
accepted) and whose alerts technicians resolved, until the ledger holds `--ledger` decided offers; then
a catalog version with the learning policy in force, and 1.5 % of machines with an open alert (most
with a proposed offer) an hour before the pass. The measured pass meets one prediction per machine:
`--at-risk` (3 %) at or above the threshold, among them half of the machines with an open alert (the
other half fall below it: their unsent offers are withdrawn); 1 % without a risk (insufficient data);
the rest below the threshold. `--score` runs
`benchmarks.score` on as many machines in the same run for the ratio against a scorer's pass.
`--keep-store DIR` keeps the built store; `--from-store DIR` times a pass on a copy of it, so that two
versions of the code meet the same store. `--closed-offers N` adds N closed offers to the store before the
pass (`benchmarks.policy_sweep`: a ledger grown by a year of passes); the sweep is then timed alone too.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sqlalchemy import event

from api import policy
from benchmarks import policy_store, policy_sweep
from benchmarks.report import round_floats
from fleet import migrate
from fleet.db import make_engine
from fleet.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# A scorer's cold pass over 10,000 machines on SQLite, when `--score` does not measure one (docs/scaling.md).
QUOTED_SCORE_S = (7.5, 8.9)


def main(argv: list[str] | None = None) -> int:
    args = argument_parser().parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="servicecast-policy-")
    started = time.perf_counter()
    if args.from_store:
        url, store = policy_store.copy(Path(args.from_store), Path(tmp.name))
    else:
        url = args.database_url or f"sqlite:///{Path(tmp.name) / 'policy.db'}"
    engine = make_engine(url)
    settings = Settings(database_url=url)
    migrate.upgrade(engine)  # a kept store too: the code under test meets its own schema
    if not args.from_store:
        shape = policy_store.Shape(
            machines=args.machines, at_risk=args.at_risk, ledger=args.ledger, seed=args.seed
        )
        store = policy_store.build(engine, settings, shape)
        if args.keep_store:
            engine.dispose()
            policy_store.keep(url, store, Path(args.keep_store))
    if args.closed_offers:
        policy_sweep.add_closed_offers(engine, args.closed_offers)
    result = {
        "benchmark": "policy",
        "database": engine.dialect.name,
        "machines": store.predictions,
        "at_risk": store.at_risk,
        "open_alerts_before": store.open_alerts,
        "ledger_offers": store.ledger,
        "thresholds": store.thresholds,
        "setup_seconds": time.perf_counter() - started,
        **measure(engine, settings, store, top=args.profile),
    }
    if args.closed_offers:
        result.update(policy_sweep.time_sweep(engine, settings, store.now))
    engine.dispose()
    if args.from_store:
        policy_store.drop_copy(url)
    tmp.cleanup()
    result.update(scorer_ratio(args, store.predictions, result["seconds"]))
    result["when"] = pd.Timestamp.now(tz="UTC").isoformat()
    result = round_floats(result, 3)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


def measure(engine, settings: Settings, store: policy_store.Store, *, top: int) -> dict:  # noqa: ANN001
    """Time one pass (under cProfile when `top`), and how long each of its transactions held the database."""
    held: list[float] = []
    began: dict[int, float] = {}

    def on_begin(conn) -> None:  # noqa: ANN001
        began[id(conn)] = time.perf_counter()

    def on_end(conn) -> None:  # noqa: ANN001
        if (start := began.pop(id(conn), None)) is not None:
            held.append(time.perf_counter() - start)

    for name, handler in (("begin", on_begin), ("commit", on_end), ("rollback", on_end)):
        event.listen(engine, name, handler)
    profiler = cProfile.Profile() if top else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    report = policy.run_once(engine=engine, settings=settings, now=store.now)
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    for name, handler in (("begin", on_begin), ("commit", on_end), ("rollback", on_end)):
        event.remove(engine, name, handler)
    out = {
        "report": report.summary(),
        "seconds": wall,
        "cpu_seconds": cpu,
        "predictions_per_s": report.predictions / wall,
        "transactions": len(held),
        "transaction_ms_median": 1000 * statistics.median(held),
        "transaction_ms_max": 1000 * max(held),
        "transaction_ms_each": [round(1000 * h) for h in held],  # the batches', then the sweeps'
        "profiled": bool(top),
    }
    if profiler:
        out["profile"] = top_entries(profiler, top)
    return out


def top_entries(profiler: cProfile.Profile, top: int) -> list[str]:
    """The project's `top` functions by cumulative time (not the libraries'), one line each: seconds, calls,
    where; and the time spent sleeping (the gaps left for other writers)."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][3], reverse=True)  # type: ignore[attr-defined]
    lines = []
    for (path, line, name), (_, calls, _, cumulative, _) in rows:
        where = Path(path)
        if where.is_relative_to(ROOT) and ".venv" not in where.parts and len(lines) < top:
            lines.append(f"{cumulative:8.2f} s {calls:>8} {where.relative_to(ROOT)}:{line}({name})")
        if name == "<built-in method time.sleep>":
            lines.append(f"{cumulative:8.2f} s {calls:>8} time.sleep")
    return lines


def scorer_ratio(args: argparse.Namespace, machines: int, policy_s: float) -> dict:
    """The pass against a scorer's over as many machines: measured here with `--score`, else quoted."""
    if not args.score:
        low, high = (s * machines / 10_000 for s in QUOTED_SCORE_S)
        return {"score_seconds_quoted": [low, high], "policy_to_score": [policy_s / high, policy_s / low]}
    command = [sys.executable, "-m", "benchmarks.score", "--machines", str(machines), "--json"]
    scored = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return {"score_seconds": scored["seconds"], "policy_to_score": policy_s / scored["seconds"]}


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=10_000)
    parser.add_argument("--at-risk", type=float, default=0.03, help="share of predictions at the threshold")
    parser.add_argument("--ledger", type=int, default=3_000, help="decided offers in the outcome ledger")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temp dir")
    parser.add_argument("--profile", type=int, default=0, help="profile the pass; show this many entries")
    parser.add_argument("--score", action="store_true", help="run benchmarks.score for the ratio")
    parser.add_argument("--keep-store", default=None, help="a folder: keep the built store there, to reuse")
    parser.add_argument("--from-store", default=None, help="a kept store's folder: time a pass on a copy")
    parser.add_argument("--closed-offers", type=int, default=0, help="closed offers added before the pass")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
