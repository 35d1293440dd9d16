"""The before/after arms of `benchmarks.models`: a backtest retrained with technicians' findings.

`with_findings`: the findings of a review on the simulator's world; `with_repairs`: those of a review
whose repairs change the machines (`benchmarks.repair_world`); `pair`: either on a simulation of its
own seed; `paired`: the summary over pairs.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from benchmarks import findings, repair_world
from benchmarks.backtest_figures import alerting, delta, thresholds, types
from models import event_features
from models.evaluate import backtest
from simulators.config import FleetConfig
from simulators.engine import simulate

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
    "precision_delta_labels_only",
)


def pair(
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
        return with_repairs(run, panel, split, review, params)
    before = backtest(panel, run.failures, run.maintenance, split=split, types=types(), **params)
    return with_findings(run, panel, split, before, review, params, memory)


def paired(pairs: list[dict], *, repairs: bool, memory: bool) -> dict:
    """Each paired difference summarised over the pairs (`findings.paired_summary`), and the pairs."""
    keys = REPAIR_KEYS if repairs else PAIRED_KEYS if memory else PAIRED_KEYS[:2]
    return {key: findings.paired_summary([p[key] for p in pairs]) for key in keys} | {"pairs": pairs}


def with_findings(  # noqa: ANN001
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
        panel, run.failures, run.maintenance, split=split, no_faults=found.no_faults, types=types(), **params
    )
    after = retrained["pooled"]
    out = {
        **review,
        "review_models": found.review_models,
        "alerts_reviewed": found.alerts,
        "alerts_visited": found.visited,
        "no_fault_found": found.no_fault_found,
        "before": alerting(before["pooled"]),
        "after": alerting(after),
        "thresholds_before": thresholds(before),
        "thresholds_after": thresholds(retrained),
        "type_alerts": {
            t: [v["test"]["alerts"], retrained["types"][t]["test"]["alerts"]]
            for t, v in before["types"].items()
        },
        "precision_delta": delta(before["pooled"], after, "precision"),
        "precision_judged_delta": delta(before["pooled"], after, "precision_judged"),
    }
    if memory:
        remembered = backtest(
            event_features.no_fault_memory(panel, found.no_faults),
            run.failures,
            run.maintenance,
            split=split,
            no_faults=found.no_faults,
            types=types(),
            **params,
        )
        with_memory = remembered["pooled"]
        out |= {
            "after_memory": alerting(with_memory),
            "thresholds_after_memory": thresholds(remembered),
            "precision_delta_memory": delta(before["pooled"], with_memory, "precision"),
            "precision_judged_delta_memory": delta(before["pooled"], with_memory, "precision_judged"),
        }
    return out


def with_repairs(run, panel: pd.DataFrame, split: pd.Timestamp, review: dict, params: dict) -> dict:  # noqa: ANN001
    """Before/after findings in the repair world: every arm trains on the world the repairs left.

    "before" knows the visits but not what they found (each resolved "other": `make_targets`' `visits`);
    "after" every finding; "after_no_fault_only" the "no fault found" ones, the repairs' visits without
    finding; "before_labels_only" neither findings nor visits (the simulator's labels alone).
    """
    found = repair_world.review(run, panel, split=split, **review, **params)
    world, seen = found.world, found.panel
    maintenance = pd.concat([world.maintenance, found.replaced], ignore_index=True)
    marks = ["machine", "ts", "machine_type"]
    repaired = found.replaced[marks]

    def trained(maint: pd.DataFrame, no_faults: pd.DataFrame | None, visits: pd.DataFrame | None) -> dict:
        return backtest(
            seen,
            world.failures,
            maint,
            split=split,
            no_faults=no_faults,
            visits=visits,
            types=types(),
            **params,
        )

    labels_only = trained(world.maintenance, None, None)
    before = trained(
        world.maintenance, None, pd.concat([found.no_faults[marks], repaired], ignore_index=True)
    )
    after = trained(maintenance, found.no_faults, None)
    no_fault_only = trained(world.maintenance, found.no_faults, repaired)
    return {
        **review,
        "review_models": found.review_models,
        "alerts_reviewed": found.alerts,
        "alerts_visited": found.visited,
        "no_fault_found": len(found.no_faults),
        "replaced_before_failure": len(found.replaced),
        "failures_without_repairs": len(run.failures),
        "failures_with_repairs": len(world.failures),
        "before_labels_only": alerting(labels_only["pooled"]),
        "before": alerting(before["pooled"]),
        "after": alerting(after["pooled"]),
        "after_no_fault_only": alerting(no_fault_only["pooled"]),
        "thresholds_before_labels_only": thresholds(labels_only),
        "thresholds_before": thresholds(before),
        "thresholds_after": thresholds(after),
        "thresholds_no_fault_only": thresholds(no_fault_only),
        "type_alerts": {
            t: [v["test"]["alerts"], after["types"][t]["test"]["alerts"]] for t, v in before["types"].items()
        },
        "precision_delta": delta(before["pooled"], after["pooled"], "precision"),
        "precision_judged_delta": delta(before["pooled"], after["pooled"], "precision_judged"),
        "precision_delta_no_fault_only": delta(before["pooled"], no_fault_only["pooled"], "precision"),
        "precision_judged_delta_no_fault_only": delta(
            before["pooled"], no_fault_only["pooled"], "precision_judged"
        ),
        "precision_delta_labels_only": delta(labels_only["pooled"], after["pooled"], "precision"),
    }
