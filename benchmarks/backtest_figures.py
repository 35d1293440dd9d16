"""The figures `benchmarks.models` reports of a backtest: headline alerting, thresholds, differences."""

from __future__ import annotations

from fleet import machine_types, type_files
from simulators.machine_types import TYPES_FILE

ALERT_DEFINITION = (
    "risk >= per-type threshold chosen on the training period (out-of-fold); "
    "an alert is right if a failure or a maintenance visit finding wear follows within 7 days"
)
# The pooled alerting figures the report gives as they are, in its order.
POOLED = (
    "precision",
    "precision_failures_only",
    "precision_judged",
    "judged_alerts",
    "false_alarms_per_machine_month",
    "alerts",
)


def headline(result: dict) -> dict:
    """The report's figures of one backtest (`models.evaluate.backtest`): pooled, then per type."""
    pooled, precursor, sudden = result["pooled"], result["pooled"]["precursor"], result["pooled"]["sudden"]
    return {
        "alert_definition": ALERT_DEFINITION,
        "thresholds": thresholds(result),
        "precursor_failures": precursor["failures"],
        "recall_precursor_24h": precursor["recall_min_lead"],
        "recall_precursor_any_lead": precursor["recall_any_lead"],
        "median_lead_hours": precursor["median_lead_hours"],
        **{key: pooled[key] for key in POOLED},
        "sudden_failures": sudden["failures"],
        "recall_sudden_24h": sudden["recall_min_lead"],
        **{
            key: pooled[key]
            for key in ("brier", "brier_base_rate", "rul_rmse_hours", "rul_interval_coverage")
        },
        "per_type": {
            t: {
                "precision": v["test"]["precision"],
                "recall_precursor_24h": v["test"]["precursor"]["recall_min_lead"],
                "false_alarms_per_machine_month": v["test"]["false_alarms_per_machine_month"],
                "fit_seconds": v["fit_seconds"],
            }
            for t, v in result["types"].items()
        },
    }


def alerting(pooled: dict) -> dict:
    """The alerting figures of one arm of a before/after comparison."""
    return {
        "precision": pooled["precision"],
        "precision_judged": pooled["precision_judged"],
        "judged_alerts": pooled["judged_alerts"],
        "recall_precursor_24h": pooled["precursor"]["recall_min_lead"],
        "false_alarms_per_machine_month": pooled["false_alarms_per_machine_month"],
        "alerts": pooled["alerts"],
    }


def thresholds(result: dict) -> dict:
    """Each type's alert threshold chosen on the training period."""
    return {t: v["threshold"] for t, v in result["types"].items()}


def types() -> dict:
    """The simulated types' sensor specs, as the scorer's models get them from the store (OEM limits)."""
    return {n: machine_types.specs_of(d) for n, d in type_files.read(TYPES_FILE).definitions.items()}


def delta(before: dict, after: dict, key: str) -> float | None:
    """`after[key] - before[key]`, None if either is None."""
    if before[key] is None or after[key] is None:
        return None
    return after[key] - before[key]
