"""Fleet failure forecasting on a seeded simulated fleet: train on the first days, test on the rest.

python -m benchmarks.models --machines 500 --json [--days 150] [--train-days 90] [--seed 7]
    [--step-seconds 3600] [--report DIR] [--review-days 60] [--pairs N] [--jobs N] [--random-state 0]
    [--no-fault-weight W] [--finding-hours H] [--sensor-health] [--finding-memory] [--review-every D]

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
the finding ("replaced before failure", or "no fault found") records what was seen. Both arms train on
that final world; "before" reads the simulator's labels alone, "after" with every finding, and
`after_no_fault_only` with the "no fault found" findings alone (`precision_delta_no_fault_only`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from benchmarks import findings, repair_world
from benchmarks.report import round_floats
from fleet import machine_types, type_files
from models import event_features
from models.evaluate import backtest, write_report
from models.fleet_features import FleetFeatures
from simulators.config import FleetConfig
from simulators.engine import simulate
from simulators.machine_types import TYPES_FILE

PAIRED_KEYS = (
    "precision_delta",
    "precision_judged_delta",
    "precision_delta_memory",
    "precision_judged_delta_memory",
)
REPAIR_KEYS = (
    "precision_delta",
    "precision_judged_delta",
    "precision_delta_no_fault_only",
    "precision_judged_delta_no_fault_only",
)


def main(argv: list[str] | None = None) -> int:
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
    args = parser.parse_args(argv)

    started = time.perf_counter()
    config = FleetConfig(
        machines=args.machines, days=args.days, seed=args.seed, step_seconds=args.step_seconds
    )
    params = {"random_state": args.random_state}
    for name in ("no_fault_weight", "finding_hours"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    if args.sensor_health:
        params["features"] = FleetFeatures(sensor_health=True)
    seeds = list(range(args.seed + 1, args.seed + args.pairs)) if not args.no_findings else []
    pool = ProcessPoolExecutor(args.jobs) if seeds and args.jobs > 1 else None
    submit = pool.submit if pool else _Now
    memory = args.finding_memory
    review = {"review_days": args.review_days, "review_every": args.review_every}
    repairs = args.repairs
    jobs = [submit(_pair, config, seed, args.train_days, review, params, memory, repairs) for seed in seeds]
    run = simulate(config)
    panel = run.telemetry(max_rows=50_000_000)
    sim_s = time.perf_counter() - started
    split = pd.Timestamp(config.start) + pd.Timedelta(days=args.train_days)
    result = backtest(panel, run.failures, run.maintenance, split=split, types=_types(), **params)
    pooled = result["pooled"]
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
        "alert_definition": "risk >= per-type threshold chosen on the training period (out-of-fold); "
        "an alert is right if a failure or a maintenance visit finding wear follows within 7 days",
        "thresholds": _thresholds(result),
        "precursor_failures": pooled["precursor"]["failures"],
        "recall_precursor_24h": pooled["precursor"]["recall_min_lead"],
        "recall_precursor_any_lead": pooled["precursor"]["recall_any_lead"],
        "median_lead_hours": pooled["precursor"]["median_lead_hours"],
        "precision": pooled["precision"],
        "precision_failures_only": pooled["precision_failures_only"],
        "precision_judged": pooled["precision_judged"],
        "judged_alerts": pooled["judged_alerts"],
        "false_alarms_per_machine_month": pooled["false_alarms_per_machine_month"],
        "alerts": pooled["alerts"],
        "sudden_failures": pooled["sudden"]["failures"],
        "recall_sudden_24h": pooled["sudden"]["recall_min_lead"],
        "brier": pooled["brier"],
        "brier_base_rate": pooled["brier_base_rate"],
        "rul_rmse_hours": pooled["rul_rmse_hours"],
        "rul_interval_coverage": pooled["rul_interval_coverage"],
        "per_type": {
            t: {
                "precision": v["test"]["precision"],
                "recall_precursor_24h": v["test"]["precursor"]["recall_min_lead"],
                "false_alarms_per_machine_month": v["test"]["false_alarms_per_machine_month"],
                "fit_seconds": v["fit_seconds"],
            }
            for t, v in result["types"].items()
        },
        "simulate_seconds": sim_s,
        "seconds": time.perf_counter() - started,
    }
    if not args.no_findings:
        if repairs:
            report["findings"] = _with_repairs(run, panel, split, review, params)
        else:
            report["findings"] = _with_findings(run, panel, split, result, review, params, memory)
        if args.pairs > 1:
            pairs = [{"seed": args.seed, **report["findings"]}]
            for seed, pair in zip(seeds, (job.result() for job in jobs), strict=True):
                pairs.append({"seed": seed, **pair})
            report["findings_paired"] = {
                key: findings.paired_summary([p[key] for p in pairs])
                for key in (REPAIR_KEYS if repairs else PAIRED_KEYS if memory else PAIRED_KEYS[:2])
            } | {"pairs": pairs}
        report["seconds"] = time.perf_counter() - started
    if pool:
        pool.shutdown()
    if args.report:
        write_report(result, args.report)
    if args.json:
        print(json.dumps(round_floats(report, 4)))
    else:
        for key, value in round_floats(report, 4).items():
            print(f"{key}: {value}")
    return 0


def _alerting(pooled: dict) -> dict:
    return {
        "precision": pooled["precision"],
        "precision_judged": pooled["precision_judged"],
        "judged_alerts": pooled["judged_alerts"],
        "recall_precursor_24h": pooled["precursor"]["recall_min_lead"],
        "false_alarms_per_machine_month": pooled["false_alarms_per_machine_month"],
        "alerts": pooled["alerts"],
    }


class _Now:
    """A job run at once, for `--jobs 1`: `result()` gives what the call returned."""

    def __init__(self, fn, *args: object):  # noqa: ANN001
        self._value = fn(*args)

    def result(self) -> object:
        return self._value


def _pair(
    config: FleetConfig,
    seed: int,
    train_days: float,
    review: dict,
    params: dict,
    memory: bool,
    repairs: bool = False,
) -> dict:
    """One more before/after findings pair, on a simulation of its own seed."""
    config = dataclasses.replace(config, seed=seed)
    run = simulate(config)
    panel = run.telemetry(max_rows=50_000_000)
    split = pd.Timestamp(config.start) + pd.Timedelta(days=train_days)
    if repairs:
        return _with_repairs(run, panel, split, review, params)
    before = backtest(panel, run.failures, run.maintenance, split=split, types=_types(), **params)
    return _with_findings(run, panel, split, before, review, params, memory)


def _with_findings(  # noqa: ANN001
    run,
    panel: pd.DataFrame,
    split: pd.Timestamp,
    before: dict,
    review: dict,
    params: dict,
    memory: bool = False,
) -> dict:
    """The backtest `before` retrained with technicians' no-fault findings on training-period alerts.

    `review` holds `findings.review`'s review_days and review_every. With `memory`, also retrained with
    each machine's memory of its findings (`_memory` keys).
    """
    found = findings.review(run, panel, split=split, **review, **params)
    retrained = backtest(
        panel, run.failures, run.maintenance, split=split, no_faults=found.no_faults, types=_types(), **params
    )
    after = retrained["pooled"]
    out = {
        **review,
        "review_models": found.review_models,
        "alerts_reviewed": found.alerts,
        "alerts_visited": found.visited,
        "no_fault_found": found.no_fault_found,
        "before": _alerting(before["pooled"]),
        "after": _alerting(after),
        "thresholds_before": _thresholds(before),
        "thresholds_after": _thresholds(retrained),
        "type_alerts": {
            t: [v["test"]["alerts"], retrained["types"][t]["test"]["alerts"]]
            for t, v in before["types"].items()
        },
        "precision_delta": _delta(before["pooled"], after, "precision"),
        "precision_judged_delta": _delta(before["pooled"], after, "precision_judged"),
    }
    if memory:
        remembered = backtest(
            event_features.no_fault_memory(panel, found.no_faults),
            run.failures,
            run.maintenance,
            split=split,
            no_faults=found.no_faults,
            types=_types(),
            **params,
        )
        with_memory = remembered["pooled"]
        out |= {
            "after_memory": _alerting(with_memory),
            "thresholds_after_memory": _thresholds(remembered),
            "precision_delta_memory": _delta(before["pooled"], with_memory, "precision"),
            "precision_judged_delta_memory": _delta(before["pooled"], with_memory, "precision_judged"),
        }
    return out


def _with_repairs(run, panel: pd.DataFrame, split: pd.Timestamp, review: dict, params: dict) -> dict:  # noqa: ANN001
    """Before/after findings in the repair world: every arm trains on the world the repairs left."""
    found = repair_world.review(run, panel, split=split, **review, **params)
    world, seen = found.world, found.panel
    maintenance = pd.concat([world.maintenance, found.replaced], ignore_index=True)

    def trained(maint: pd.DataFrame, no_faults: pd.DataFrame | None) -> dict:
        return backtest(
            seen, world.failures, maint, split=split, no_faults=no_faults, types=_types(), **params
        )

    before = trained(world.maintenance, None)
    after = trained(maintenance, found.no_faults)
    no_fault_only = trained(world.maintenance, found.no_faults)
    return {
        **review,
        "review_models": found.review_models,
        "alerts_reviewed": found.alerts,
        "alerts_visited": found.visited,
        "no_fault_found": len(found.no_faults),
        "replaced_before_failure": len(found.replaced),
        "failures_without_repairs": len(run.failures),
        "failures_with_repairs": len(world.failures),
        "before": _alerting(before["pooled"]),
        "after": _alerting(after["pooled"]),
        "after_no_fault_only": _alerting(no_fault_only["pooled"]),
        "thresholds_before": _thresholds(before),
        "thresholds_after": _thresholds(after),
        "thresholds_no_fault_only": _thresholds(no_fault_only),
        "type_alerts": {
            t: [v["test"]["alerts"], after["types"][t]["test"]["alerts"]] for t, v in before["types"].items()
        },
        "precision_delta": _delta(before["pooled"], after["pooled"], "precision"),
        "precision_judged_delta": _delta(before["pooled"], after["pooled"], "precision_judged"),
        "precision_delta_no_fault_only": _delta(before["pooled"], no_fault_only["pooled"], "precision"),
        "precision_judged_delta_no_fault_only": _delta(
            before["pooled"], no_fault_only["pooled"], "precision_judged"
        ),
    }


def _thresholds(result: dict) -> dict:
    return {t: v["threshold"] for t, v in result["types"].items()}


def _types() -> dict:
    """The simulated types' sensor specs, as the scorer's models get them from the store (OEM limits)."""
    return {n: machine_types.specs_of(d) for n, d in type_files.read(TYPES_FILE).definitions.items()}


def _delta(before: dict, after: dict, key: str) -> float | None:
    if before[key] is None or after[key] is None:
        return None
    return after[key] - before[key]


if __name__ == "__main__":
    raise SystemExit(main())
