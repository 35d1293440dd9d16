"""Episodes per component and the Azure benchmark figures: recall, precision, F1, lead, false alarms.

Alerts of one machine and component less than `MERGE_HOURS` apart form one episode, opened at its first
alert. A failure is caught by an episode of its own component opened between `MIN_LEAD_HOURS` and
`WINDOW_HOURS` before it; an episode is true when its component fails within `WINDOW_HOURS` after it opened.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MERGE_HOURS = 6.0
MIN_LEAD_HOURS = 2.0
WINDOW_HOURS = 168.0


def episodes(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alert times (machine, component, ts) merged into episodes (machine, component, start)."""
    if not len(alerts):
        return pd.DataFrame(columns=["machine", "component", "start"])
    a = alerts.assign(ts=pd.to_datetime(alerts["ts"], utc=True)).sort_values(["machine", "component", "ts"])
    gap = a.groupby(["machine", "component"])["ts"].diff().dt.total_seconds() / 3600.0
    first = gap.isna() | (gap >= MERGE_HOURS)
    return (
        a[first.to_numpy()]
        .rename(columns={"ts": "start"})[["machine", "component", "start"]]
        .reset_index(drop=True)
    )


def _figures(eps: pd.DataFrame, failures: pd.DataFrame, machine_months: float) -> dict:
    pairs = failures.reset_index(names="f").merge(eps.reset_index(names="e"), on=["machine", "component"])
    lead = (pairs["ts"] - pairs["start"]).dt.total_seconds() / 3600.0
    caught = pairs[(lead >= MIN_LEAD_HOURS) & (lead <= WINDOW_HOURS)].assign(lead=lead)
    lead_by_failure = caught.groupby("f")["lead"].max()
    true_eps = pairs[(lead >= 0) & (lead <= WINDOW_HOURS)]["e"].nunique()
    n_f, n_e = len(failures), len(eps)
    recall = len(lead_by_failure) / n_f if n_f else None
    precision = true_eps / n_e if n_e else None
    f1 = 2 * precision * recall / (precision + recall) if recall and precision else 0.0
    return {
        "failures": n_f,
        "caught": int(len(lead_by_failure)),
        "episodes": n_e,
        "true_episodes": int(true_eps),
        "recall": recall,
        "episode_precision": precision,
        "f1": f1,
        "median_lead_h": float(np.median(lead_by_failure)) if len(lead_by_failure) else None,
        "false_alarms_per_machine_month": (n_e - true_eps) / machine_months if machine_months else None,
    }


def score(eps: pd.DataFrame, failures: pd.DataFrame, components: list[str], machine_months: float) -> dict:
    """`overall` and `per_component` figures of episodes against failures (machine, component, ts)."""
    eps = eps.assign(start=pd.to_datetime(eps["start"], utc=True), machine=eps["machine"].astype(str))
    failures = failures.assign(
        ts=pd.to_datetime(failures["ts"], utc=True), machine=failures["machine"].astype(str)
    )
    per = {
        c: _figures(
            eps[eps["component"] == c].reset_index(drop=True),
            failures[failures["component"] == c].reset_index(drop=True),
            machine_months,
        )
        for c in components
    }
    return {
        "overall": _figures(eps.reset_index(drop=True), failures.reset_index(drop=True), machine_months),
        "per_component": per,
    }
