"""The threshold search as it was before it sorted and indexed its data once (3ec692b): eighteen pandas
passes over the whole out-of-fold table. Kept as the reference the one-sweep search must equal."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.episodes import RESET_HOURS, machine_months
from models.fleet_model import FleetModel
from models.training import MAX_FALSE_ALARMS, _opens


def alert_starts(
    machines: np.ndarray,
    ts: pd.Series | np.ndarray,
    risk: np.ndarray,
    threshold: float,
    *,
    reset_hours: float = RESET_HOURS,
) -> pd.DataFrame:
    """One row per alert: machine and start time."""
    frame = pd.DataFrame({"machine": np.asarray(machines).astype(str), "ts": pd.to_datetime(ts, utc=True)})
    frame = frame[np.nan_to_num(np.asarray(risk, dtype=float), nan=-1.0) >= threshold]
    frame = frame.sort_values(["machine", "ts"], kind="mergesort")
    gap = frame.groupby("machine", sort=False)["ts"].diff().dt.total_seconds() / 3600.0
    starts = frame[gap.isna().to_numpy() | (gap.to_numpy() > reset_hours)]
    return starts.rename(columns={"ts": "start"}).reset_index(drop=True)


def _next_event(alerts: pd.DataFrame, events: pd.DataFrame, horizon_hours: float) -> np.ndarray:
    """True for alerts followed by an event of their machine within the horizon."""
    if not len(alerts) or not len(events):
        return np.zeros(len(alerts), dtype=bool)
    left = alerts.assign(pos=np.arange(len(alerts))).sort_values("start")
    right = events.sort_values("event_ts")
    merged = pd.merge_asof(
        left, right, left_on="start", right_on="event_ts", by="machine", direction="forward"
    )
    hours = (merged["event_ts"] - merged["start"]).dt.total_seconds() / 3600.0
    hit = np.zeros(len(alerts), dtype=bool)
    hit[merged["pos"].to_numpy()] = (hours <= horizon_hours).fillna(False).to_numpy()
    return hit


def _events(failures: pd.DataFrame, maintenance: pd.DataFrame | None) -> pd.DataFrame:
    parts = [pd.DataFrame({"machine": failures["machine"].astype(str), "event_ts": failures["ts"]})]
    if maintenance is not None and len(maintenance):
        found = maintenance[maintenance["found_mode"].notna()]
        parts.append(pd.DataFrame({"machine": found["machine"].astype(str), "event_ts": found["ts"]}))
    events = pd.concat(parts, ignore_index=True)
    events["event_ts"] = pd.to_datetime(events["event_ts"], utc=True).dt.as_unit("ns")
    return events


def right_alerts(
    alerts: pd.DataFrame, failures: pd.DataFrame, maintenance: pd.DataFrame | None, *, horizon_hours: float
) -> np.ndarray:
    """Per alert (machine, start): whether its machine fails, or wear is found, within the horizon."""
    alerts = alerts.assign(start=pd.to_datetime(alerts["start"], utc=True).dt.as_unit("ns"))
    return _next_event(alerts, _events(failures, maintenance), horizon_hours)


def lead_times(alerts: pd.DataFrame, failures: pd.DataFrame, horizon_hours: float) -> np.ndarray:
    """Per failure: hours between the earliest alert in its horizon and the failure (NaN if none)."""
    if not len(failures):
        return np.zeros(0)
    f = pd.DataFrame(
        {
            "machine": failures["machine"].astype(str).to_numpy(),
            "fts": pd.to_datetime(failures["ts"], utc=True).dt.as_unit("ns").to_numpy(),
        }
    )
    f["pos"] = np.arange(len(f))
    a = alerts.assign(start=pd.to_datetime(alerts["start"], utc=True).dt.as_unit("ns"))
    pairs = f.merge(a, on="machine", how="inner")
    hours = (pairs["fts"] - pairs["start"]).dt.total_seconds() / 3600.0
    pairs = pairs[(hours > 0) & (hours <= horizon_hours)].assign(lead=hours)
    lead = np.full(len(f), np.nan)
    best = pairs.groupby("pos")["lead"].max()
    lead[best.index.to_numpy(dtype=np.int64)] = best.to_numpy(dtype=float)
    return lead


def alert_metrics(
    alerts: pd.DataFrame,
    failures: pd.DataFrame,
    maintenance: pd.DataFrame | None,
    *,
    horizon_hours: float,
    machine_months: float,
    min_lead_hours: float = 24.0,
    end: pd.Timestamp | None = None,
) -> dict:
    """Precision, false alarms per machine-month, recall at the minimum lead and median lead, per kind.

    With `end` (the last time the ground truth covers), also `precision_judged`: the precision of the
    alerts whose horizon ends by `end` (`judged_alerts`); a later one is counted false without a failure
    but cannot be judged, the machine may fail after `end`.
    """
    alerts = alerts.assign(start=pd.to_datetime(alerts["start"], utc=True).dt.as_unit("ns"))
    right = right_alerts(alerts, failures, maintenance, horizon_hours=horizon_hours)
    strict = _next_event(alerts, _events(failures, None), horizon_hours)
    n = len(alerts)
    out = {
        "alerts": n,
        "true_alerts": int(right.sum()),
        "precision": float(right.mean()) if n else None,
        "precision_failures_only": float(strict.mean()) if n else None,
        "false_alarms": int(n - right.sum()),
        "false_alarms_per_machine_month": float((n - right.sum()) / machine_months)
        if machine_months
        else None,
    }
    if end is not None:
        judged = (alerts["start"] + pd.Timedelta(hours=horizon_hours) <= end).to_numpy()
        out["judged_alerts"] = int(judged.sum())
        out["precision_judged"] = float(right[judged].mean()) if judged.any() else None
    for kind, mask in (
        ("precursor", failures["has_precursor"].astype(bool)),
        ("sudden", ~failures["has_precursor"].astype(bool)),
    ):
        lead = lead_times(alerts, failures[mask.to_numpy()], horizon_hours)
        ok = lead >= min_lead_hours
        out[kind] = {
            "failures": int(len(lead)),
            "detected": int(np.sum(~np.isnan(lead))),
            "detected_min_lead": int(ok.sum()),
            "recall_min_lead": float(ok.mean()) if len(lead) else None,
            "recall_any_lead": float(np.mean(~np.isnan(lead))) if len(lead) else None,
            "median_lead_hours": float(np.nanmedian(lead)) if np.any(~np.isnan(lead)) else None,
        }
    return out


def choose_threshold(
    model: FleetModel,
    panel: pd.DataFrame,
    failures: pd.DataFrame,
    maintenance: pd.DataFrame | None,
    *,
    min_precision: float = 0.85,
    max_false_alarms: float = MAX_FALSE_ALARMS,
    min_lead_hours: float = 24.0,
    plateau_middle: bool = False,
) -> tuple[float, dict]:
    """Lowest threshold whose out-of-fold training alerts keep precision and false alarms in bounds.

    When none does, the lowest that keeps the false alarms in bounds (the highest notch if none does). With
    `plateau_middle`, the middle of the run of higher thresholds that open the very same training alerts:
    where out-of-fold risks are nearly 0 or 1, the lowest of them sits at the edge of the noise that a
    model averaged over folds shows on new machines.
    """
    clf = model.classifier_
    if clf is None or clf.oof_ is None or np.all(np.isnan(clf.oof_)):
        return 0.5, {}
    feats = model.features_
    machines = panel[feats.machine_col].astype(str).to_numpy()
    ts = pd.to_datetime(panel[feats.time_col], utc=True)
    seen = np.unique(machines[~np.isnan(clf.oof_)])
    f = failures[failures["machine"].astype(str).isin(seen)]
    m = None if maintenance is None else maintenance[maintenance["machine"].astype(str).isin(seen)]
    mine = np.isin(machines, seen)
    months = machine_months(machines[mine], ts[mine])
    chosen, budget, tried = None, None, []
    for thr in np.round(np.arange(0.1, 0.96, 0.05), 2):
        alerts = alert_starts(machines, ts, clf.oof_, thr)
        stats = alert_metrics(
            alerts,
            f,
            m,
            horizon_hours=model.horizon_hours,
            machine_months=months,
            min_lead_hours=min_lead_hours,
        )
        precision = stats["precision"] or 0.0
        fa = stats["false_alarms_per_machine_month"] or 0.0
        if budget is None and fa <= max_false_alarms:
            budget = (float(thr), stats)
        if chosen is None and precision >= min_precision and fa <= max_false_alarms:
            chosen = (float(thr), stats)
        tried.append((float(thr), stats))
    picked = chosen or budget or tried[-1]
    if not plateau_middle:
        return picked
    same = [t for t, st in tried if t >= picked[0] and _opens(st) == _opens(picked[1])]
    run = [t for k, t in enumerate(same) if np.isclose(t, picked[0] + 0.05 * k)]
    return next((t, st) for t, st in tried if t == run[len(run) // 2])
