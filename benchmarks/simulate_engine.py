"""How fast the fleet engine generates telemetry (readings/s), generation only: no broker, no database."""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

from simulators.config import FleetConfig
from simulators.engine import simulate
from simulators.machine_types import SENSOR_COLUMNS


def run(
    *, machines: int, days: float, seed: int, step_seconds: int, chunk_machines: int, chunk_steps: int
) -> dict:
    """Simulate a fleet, walk every panel chunk, and count rows and sensor values (readings)."""
    config = FleetConfig(machines=machines, days=days, seed=seed, step_seconds=step_seconds)
    t0 = time.perf_counter()
    sim = simulate(config)
    t1 = time.perf_counter()
    rows = readings = 0
    for panel in sim.iter_panels(chunk_machines=chunk_machines, chunk_steps=chunk_steps):
        rows += len(panel)
        readings += int(panel[list(SENSOR_COLUMNS)].notna().to_numpy().sum())
    t2 = time.perf_counter()
    return {
        "benchmark": "simulate_engine",
        "machines": machines,
        "days": days,
        "step_seconds": step_seconds,
        "chunk_machines": chunk_machines,
        "chunk_steps": chunk_steps,
        "rows": rows,
        "readings": readings,
        "failures": len(sim.failures),
        "setup_s": round(t1 - t0, 3),
        "generate_s": round(t2 - t1, 3),
        "total_s": round(t2 - t0, 3),
        "readings_per_s": round(readings / (t2 - t0)),
        "rows_per_s": round(rows / (t2 - t0)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    """Command line: `python -m benchmarks.simulate_engine --machines 1000 --days 30 --json`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step-seconds", type=int, default=60)
    parser.add_argument("--chunk-machines", type=int, default=250)
    parser.add_argument("--chunk-steps", type=int, default=1440)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(
        machines=args.machines,
        days=args.days,
        seed=args.seed,
        step_seconds=args.step_seconds,
        chunk_machines=args.chunk_machines,
        chunk_steps=args.chunk_steps,
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")


if __name__ == "__main__":
    main()
