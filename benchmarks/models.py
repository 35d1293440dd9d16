"""Fleet failure forecasting on a seeded simulated fleet: train on the first days, test on the rest.

python -m benchmarks.models --machines 500 --json [--days 150] [--train-days 90] [--seed 7]
    [--step-seconds 3600] [--report DIR] [--review-days 60] [--pairs N] [--jobs N] [--random-state 0]
    [--no-fault-weight W] [--finding-hours H] [--sensor-health] [--finding-memory] [--review-every D]
    [--repairs [--review-capacity K]]

"Alerted" = the risk reaches the alert threshold chosen on the training period (out-of-fold alerts:
the lowest threshold with precision >= 0.85 and <= 0.08 false alarms per machine-month there). Recall
counts precursor failures in the test period with an alert started 24 h to 7 days before them.
`precision_judged`: precision of the test alerts whose 7-day horizon ends within the data (a later alert
without a failure counts false in `precision` but cannot be judged). `rul_interval_coverage`: share of
test rows within 7 days before a precursor failure whose true remaining life lies in the 80 % band.
`findings` (unless --no-findings): technicians resolve an earlier model's alerts of the last
--review-days of training with "no fault found" where the machine did not fail
(`benchmarks.findings`); the same backtest retrained with those findings, before and after (pooled
figures, each type's threshold `thresholds_before`/`thresholds_after` and test alerts `type_alerts`).
`--review-every D`: a rolling review instead, the alerts of each D days of the review window from a
model retrained on the days before them with the findings recorded by then (`review_models` per type).
`--pairs N` repeats that before/after pair on N simulations (seeds --seed, --seed+1, ...; the extra
pairs in `--jobs` processes); a pair shares its simulation, folds and classifier seed (--random-state).
It reports every pair, the mean precision difference (also judged only) and its 95 % intervals
(`findings_paired`). `--no-fault-weight` and `--finding-hours` set `FleetModel`'s parameters so named;
`--sensor-health` gives it `FleetFeatures(sensor_health=True)` (spike and one-sensor-alone features).
`--finding-memory`: one more retrained backtest that also reads each machine's memory of its findings
(`models.event_features.no_fault_memory`, as `servicecast train --finding-memory` and then the scorer do):
`after_memory`, `precision_delta_memory` and their paired summaries.
`--repairs`: the pair in a world where the technicians' repairs change the machine
(`benchmarks.repair_world`): a visit during wear replaces the part, so the failure never comes and only
the finding ("replaced before failure", or "no fault found") records what was seen. Every arm trains on
that final world; "before" knows the visits but not their findings (as if each were resolved "other": the
rows whose horizon holds a visit are unknown), "after" reads every finding, `after_no_fault_only` the
"no fault found" findings alone (`precision_delta_no_fault_only`), and `before_labels_only` the
simulator's labels alone, visits unknown (`precision_delta_labels_only`: after minus it).
`--review-capacity K` (with --repairs): the team visits K alerts per machine-month, each round those of
the machines whose review risk peaked highest (`benchmarks.repair_world`), instead of every alert the
review model's own threshold opens; the arms are the same.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from benchmarks import backtest_figures, findings_arms
from benchmarks.report import round_floats
from models.evaluate import backtest, write_report
from models.fleet_features import FleetFeatures
from simulators.config import FleetConfig
from simulators.engine import simulate


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark the options describe and print its report."""
    parser = argument_parser()
    args = parser.parse_args(argv)
    if args.review_capacity is not None and not args.repairs:
        parser.error("--review-capacity needs --repairs")
    print(render(measure(args, model_params(args), config=fleet_config(args)), as_json=args.json))
    return 0


def render(report: dict, *, as_json: bool) -> str:
    """The report as printed: one JSON object, else a `key: value` line each."""
    if as_json:
        return json.dumps(round_floats(report, 4))
    return "\n".join(f"{key}: {value}" for key, value in round_floats(report, 4).items())


def measure(args: argparse.Namespace, params: dict, *, config: FleetConfig) -> dict:
    """The report of the options `args` on the fleet `config` with `FleetModel`'s `params`.

    The CLI gives `fleet_config(args)` and `model_params(args)`.
    """
    started = time.perf_counter()
    seeds = list(range(args.seed + 1, args.seed + args.pairs)) if not args.no_findings else []
    pool = ProcessPoolExecutor(args.jobs) if seeds and args.jobs > 1 else None
    submit = pool.submit if pool else _Now
    memory = args.finding_memory
    review = {"review_days": args.review_days, "review_every": args.review_every}
    if args.review_capacity is not None:
        review["capacity"] = args.review_capacity
    repairs = args.repairs
    jobs = [
        submit(findings_arms.pair, config, seed, args.train_days, review, params, memory, repairs)
        for seed in seeds
    ]
    run = simulate(config)
    panel = run.telemetry(max_rows=50_000_000)
    sim_s = time.perf_counter() - started
    split = pd.Timestamp(config.start) + pd.Timedelta(days=args.train_days)
    types = backtest_figures.types()
    result = backtest(panel, run.failures, run.maintenance, split=split, types=types, **params)
    report = {
        "benchmark": "models",
        "machines": args.machines,
        "days": args.days,
        "train_days": args.train_days,
        "step_seconds": args.step_seconds,
        "seed": args.seed,
        "random_state": args.random_state,
        "sensor_health": args.sensor_health,
        "finding_memory": args.finding_memory,
        "repairs": args.repairs,
        **backtest_figures.headline(result),
        "simulate_seconds": sim_s,
        "seconds": time.perf_counter() - started,
    }
    if not args.no_findings:
        if repairs:
            report["findings"] = findings_arms.with_repairs(run, panel, split, review, params)
        else:
            report["findings"] = findings_arms.with_findings(
                run, panel, split, result, review, params, memory
            )
        if args.pairs > 1:
            pairs = [{"seed": args.seed, **report["findings"]}]
            for seed, pair in zip(seeds, (job.result() for job in jobs), strict=True):
                pairs.append({"seed": seed, **pair})
            report["findings_paired"] = findings_arms.paired(pairs, repairs=repairs, memory=memory)
        report["seconds"] = time.perf_counter() - started
    if pool:
        pool.shutdown()
    if args.report:
        write_report(result, args.report)
    return report


def argument_parser() -> argparse.ArgumentParser:
    """The CLI's options (the module docstring says what each does)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=500)
    parser.add_argument("--days", type=float, default=150.0)
    parser.add_argument("--train-days", type=float, default=90.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--step-seconds", type=int, default=3600)
    parser.add_argument("--report", type=Path, default=None, help="write report.md and backtest.json here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--review-days", type=float, default=60.0, help="days of training alerts reviewed")
    parser.add_argument("--no-findings", action="store_true", help="skip the run with technicians' findings")
    parser.add_argument("--pairs", type=int, default=1, help="findings pairs, one simulation each")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the extra pairs")
    parser.add_argument("--random-state", type=int, default=0, help="classifier seed (folds and boosting)")
    parser.add_argument("--no-fault-weight", type=float, default=None, help="FleetModel's, if given")
    parser.add_argument("--finding-hours", type=float, default=None, help="FleetModel's, if given")
    parser.add_argument("--sensor-health", action="store_true", help="features telling sensor faults")
    parser.add_argument("--finding-memory", action="store_true", help="per-machine no-fault memory")
    parser.add_argument("--review-every", type=float, default=None, help="days between review models")
    parser.add_argument("--repairs", action="store_true", help="technicians' repairs change the machine")
    parser.add_argument(
        "--review-capacity", type=float, default=None, help="with --repairs: visits per machine-month"
    )
    return parser


def fleet_config(args: argparse.Namespace) -> FleetConfig:
    """The simulated fleet the options ask for."""
    return FleetConfig(machines=args.machines, days=args.days, seed=args.seed, step_seconds=args.step_seconds)


def model_params(args: argparse.Namespace) -> dict:
    """`FleetModel`'s parameters the options set."""
    params = {"random_state": args.random_state}
    for name in ("no_fault_weight", "finding_hours"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    if args.sensor_health:
        params["features"] = FleetFeatures(sensor_health=True)
    return params


class _Now:
    """A job run at once, for `--jobs 1`: `result()` gives what the call returned."""

    def __init__(self, fn, *args: object):  # noqa: ANN001
        self._value = fn(*args)

    def result(self) -> object:
        return self._value


if __name__ == "__main__":
    raise SystemExit(main())
