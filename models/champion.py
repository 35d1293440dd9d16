"""Champion and challenger: a candidate goes live only if it alerts at least as well on a held-out window.

Metric: alert-episode F1 on the window, the harmonic mean of episode precision (an alert is right when a
failure or found wear follows within the horizon) and recall of precursor failures alerted at least
`min_lead_hours` ahead; ties are broken by fewer false alarms per machine-month. An alert with neither but
a visit without finding within its horizon is unjudged (`episodes.GroundTruth.unjudged`), counted apart.
Each model alerts at its own operating threshold, so the figures are the ones a technician would have seen.
A window without such a failure is no evidence: the champion stays (unless forced).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from fleet.audit import Actor
from models import episodes, versions

log = logging.getLogger(__name__)
METRIC = "alert_episode_f1"
COLD_START_KIND = "cold_start"  # the registry kind of a version that alerts without failure history


def window_alerts(
    model,  # noqa: ANN001
    part: pd.DataFrame,
    start: pd.Timestamp,
    *,
    risk: np.ndarray | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Every row's risk (given, or computed), and the alerts the model's threshold opens from `start` on."""
    if risk is None:
        risk, _ = model.risk_rows(part)
    ts = pd.to_datetime(part["ts"], utc=True)
    test = (ts >= start).to_numpy()
    machines = part["machine"].astype(str).to_numpy()
    return risk, episodes.alert_starts(machines[test], ts[test], risk[test], model.threshold_)


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
    visits: pd.DataFrame | None = None,
) -> dict:
    """F1, precision, recall and false alarms of `model`'s alerts on the rows from `start` on, and how many
    of them a visit without finding (`visits`: machine, ts) left unjudged."""
    _, alerts = window_alerts(model, panel, start)
    end = pd.to_datetime(panel["ts"], utc=True).max()
    f = failures[pd.to_datetime(failures["ts"], utc=True) >= start + pd.Timedelta(hours=min_lead_hours)]
    m = None if maintenance is None else maintenance[pd.to_datetime(maintenance["ts"], utc=True) >= start]
    months = panel["machine"].nunique() * (end - start).total_seconds() / 86400.0 / 30.0
    stats = episodes.alert_metrics(
        alerts,
        f,
        m,
        horizon_hours=model.horizon_hours,
        machine_months=months,
        min_lead_hours=min_lead_hours,
        visits=visits,
    )
    precision = stats["precision"] or 0.0
    recall = stats["precursor"]["recall_min_lead"] or 0.0
    return {
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "precision": stats["precision"],
        "recall": stats["precursor"]["recall_min_lead"],
        "alerts": stats["alerts"],
        "unjudged_alerts": stats.get("unjudged_alerts", 0),  # none without visits
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
    visits: pd.DataFrame | None = None,
) -> dict:
    """Both models' figures on the same window, and whether the candidate is at least as good."""
    args = {
        "panel": panel,
        "failures": failures,
        "maintenance": maintenance,
        "start": start,
        "visits": visits,
    }
    mine = window_figures(candidate, **args)
    theirs = None if champion is None else window_figures(champion, **args) | {"version": champion_version}
    good, reason = _verdict(mine, theirs)
    window = {"start": start.isoformat(), "end": pd.to_datetime(panel["ts"], utc=True).max().isoformat()}
    return {
        "metric": METRIC,
        "window": window,
        "candidate": mine,
        "champion": theirs,
        "at_least_as_good": good,
        "evidence": bool(mine["failures"]),  # a failure in the window to judge by
        "reason": reason,
    }


def _verdict(mine: dict, theirs: dict | None) -> tuple[bool, str]:
    """Whether the candidate may replace the champion, and why, in words."""
    if theirs is None:
        return True, "no version was active to compare with"
    if not mine["failures"]:
        # Both F1 are 0 then, and fewer false alarms alone would favour a model that never alerts.
        return False, "no failure in the held-out window: no evidence that the candidate alerts as well"
    if _rank(mine) >= _rank(theirs):
        return True, "at least as good on the held-out window"
    return False, "worse on the held-out window"


def unjudged(comparison: dict) -> str | None:
    """How many of the window's alerts were left unjudged (a visit without finding within the horizon, no
    failure after it; out of precision and false alarms), the candidate's then the champion's, in words; None
    for a comparison stored before they were counted."""
    counts = [f.get("unjudged_alerts") for f in (comparison["candidate"], comparison["champion"]) if f]
    if None in counts:
        return None
    return f"unjudged alerts {' vs '.join(map(str, counts))}"


def _rank(figures: dict) -> tuple[float, float]:
    return (round(figures["f1"], 6), -round(figures["false_alarms_per_machine_month"], 6))


def register_candidate(
    engine: Engine,
    *,
    model,  # noqa: ANN001
    metrics: dict,
    machine_type: str,
    panel: pd.DataFrame,
    failures: pd.DataFrame,
    maintenance: pd.DataFrame | None,
    start: pd.Timestamp | None,
    visits: pd.DataFrame | None = None,
    activate: bool = True,
    force: bool = False,
    by: Actor | None = None,
) -> tuple[str, dict | None]:
    """Register a candidate trained before `start`; activate it if it beats the champion there (or forced).

    `visits` (machine, ts) are visits without finding: the window's alerts they leave unjudged count apart.

    A cold-start champion (no failure history) is replaced without comparison: labels now exist. With
    no `start` (no window held out) there is nothing to compare on and the candidate goes live.
    """
    if start is None:
        args = {"model": model, "metrics": metrics, "machine_type": machine_type, "panel": panel}
        return _register(engine, **args, start=None, go=activate, by=by), None
    active = {v.version: v for v in versions.list_versions(engine, machine_type) if v.active}
    champ = next(iter(active.values()), None)
    if champ is not None and champ.kind == COLD_START_KIND:
        champ = None
    champion, damage = _load_champion(engine, champ)
    comparison = compare(
        candidate=model,
        champion=champion,
        champion_version=None if champion is None else champ.version,
        panel=panel,
        failures=failures,
        maintenance=maintenance,
        start=start,
        visits=visits,
    )
    if damage:
        comparison["reason"] = f"{damage}; the candidate replaces it without comparison"
    go = activate and (force or comparison["at_least_as_good"])
    comparison["forced"] = go and not comparison["at_least_as_good"]  # never without activation
    detail = {"comparison": _summary(comparison), "forced": comparison["forced"]}
    args = {"model": model, "metrics": metrics, "machine_type": machine_type, "panel": panel}
    version = _register(engine, **args, start=start, go=go, by=by, comparison=comparison, detail=detail)
    if activate and not go:
        versions.refuse(engine, version, by=by, detail=detail)
    return version, comparison


def _load_champion(engine: Engine, champ: versions.VersionInfo | None) -> tuple[object | None, str | None]:
    """The champion's model, or None and why when its artifact cannot be loaded."""
    if champ is None:
        return None, None
    try:
        return versions.load(engine, champ.version), None
    except versions.ModelUnreadable as exc:
        # A champion that cannot be loaded scores nothing: any working candidate beats it.
        log.warning("%s", exc)
        return None, str(exc)


def _register(
    engine: Engine,
    *,
    model,  # noqa: ANN001
    metrics: dict,
    machine_type: str,
    panel: pd.DataFrame,
    start: pd.Timestamp | None,
    go: bool,
    by: Actor | None,
    comparison: dict | None = None,
    detail: dict | None = None,
) -> str:
    """Store the candidate with its window, figures and comparison; activate it if `go`."""
    ts = pd.to_datetime(panel["ts"], utc=True)
    return versions.register(
        engine,
        model=model,
        machine_type=machine_type,
        train_start=ts.min().to_pydatetime(),
        train_end=(ts.max() if start is None else start).to_pydatetime(),
        # The trend limits go beside the artifact so that readers (the console) need not unpickle it.
        params=model.get_params(deep=False) | {"features": None, "trend_limits": dict(model.trend_.limits_)},
        metrics=metrics,
        comparison=comparison,
        activate=go,
        by=by,
        detail=detail,
    )


def _summary(comparison: dict) -> dict:
    """The comparison in a few figures, for the audit trail."""
    champ = comparison["champion"]
    return {
        "metric": comparison["metric"],
        "candidate": round(comparison["candidate"]["f1"], 4),
        "champion": None if champ is None else round(champ["f1"], 4),
        "champion_version": None if champ is None else champ["version"],
        "reason": comparison["reason"],
    }
