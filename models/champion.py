"""Champion and challenger: a candidate goes live only if it alerts at least as well on a held-out window.

Metric: alert-episode F1 on the window, the harmonic mean of episode precision (an alert is right when a
failure or found wear follows within the horizon) and recall of precursor failures alerted at least
`min_lead_hours` ahead; ties are broken by fewer false alarms per machine-month. Each model alerts at its
own operating threshold, so the figures are the ones a technician would have seen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models import events

METRIC = "alert_episode_f1"


def window_alerts(model, part: pd.DataFrame, start: pd.Timestamp) -> tuple[np.ndarray, pd.DataFrame]:  # noqa: ANN001
    """Every row's risk, and the alerts the model's own threshold opens on rows from `start` on."""
    risk, _ = model.risk_rows(part)
    ts = pd.to_datetime(part["ts"], utc=True)
    test = (ts >= start).to_numpy()
    machines = part["machine"].astype(str).to_numpy()
    return risk, events.alert_starts(machines[test], ts[test], risk[test], model.threshold_)


def holdout_start(panel: pd.DataFrame, days: float) -> pd.Timestamp:
    """Start of the last `days` of the panel, at most a quarter of its span (short histories still train)."""
    ts = pd.to_datetime(panel["ts"], utc=True)
    span = ts.max() - ts.min()
    return ts.max() - min(pd.Timedelta(days=days), span / 4)


def window_figures(
    model,  # noqa: ANN001
    panel: pd.DataFrame,
    failures: pd.DataFrame,
    maintenance: pd.DataFrame | None,
    *,
    start: pd.Timestamp,
    min_lead_hours: float = 24.0,
) -> dict:
    """F1, precision, recall and false alarms of `model`'s alerts on the rows from `start` on."""
    _, alerts = window_alerts(model, panel, start)
    end = pd.to_datetime(panel["ts"], utc=True).max()
    f = failures[pd.to_datetime(failures["ts"], utc=True) >= start + pd.Timedelta(hours=min_lead_hours)]
    m = None if maintenance is None else maintenance[pd.to_datetime(maintenance["ts"], utc=True) >= start]
    months = panel["machine"].nunique() * (end - start).total_seconds() / 86400.0 / 30.0
    stats = events.alert_metrics(
        alerts, f, m, horizon_hours=model.horizon_hours, machine_months=months, min_lead_hours=min_lead_hours
    )
    precision = stats["precision"] or 0.0
    recall = stats["precursor"]["recall_min_lead"] or 0.0
    return {
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "precision": stats["precision"],
        "recall": stats["precursor"]["recall_min_lead"],
        "alerts": stats["alerts"],
        "failures": stats["precursor"]["failures"],
        "false_alarms_per_machine_month": stats["false_alarms_per_machine_month"] or 0.0,
        "threshold": float(model.threshold_),
    }


def compare(
    *,
    candidate,  # noqa: ANN001
    champion,  # noqa: ANN001
    champion_version: str | None,
    panel: pd.DataFrame,
    failures: pd.DataFrame,
    maintenance: pd.DataFrame | None,
    start: pd.Timestamp,
) -> dict:
    """Both models' figures on the same window, and whether the candidate is at least as good."""
    args = {"panel": panel, "failures": failures, "maintenance": maintenance, "start": start}
    mine = window_figures(candidate, **args)
    theirs = None if champion is None else window_figures(champion, **args) | {"version": champion_version}
    good = theirs is None or _rank(mine) >= _rank(theirs)
    window = {"start": start.isoformat(), "end": pd.to_datetime(panel["ts"], utc=True).max().isoformat()}
    return {
        "metric": METRIC,
        "window": window,
        "candidate": mine,
        "champion": theirs,
        "at_least_as_good": good,
    }


def _rank(figures: dict) -> tuple[float, float]:
    return (round(figures["f1"], 6), -round(figures["false_alarms_per_machine_month"], 6))
