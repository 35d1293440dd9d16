"""Backtests on simulator ground truth: train on an earlier period, score a later one, compare with failures.

No leakage: models see rows and ground truth before `split` only (labels near the split are censored);
test rows after `split` are scored with causal features (a row's features use only earlier rows), by
chunks of `chunk_machines` machines, so scoring holds one chunk's feature table at a time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from fleet.machine_types import SensorSpec
from models import champion, episodes, metrics
from models.labels import make_targets, within
from models.training import train_type

CHUNK_MACHINES = 100


def backtest(
    panel: pd.DataFrame,
    failures: pd.DataFrame,
    maintenance: pd.DataFrame | None,
    *,
    split: pd.Timestamp,
    no_faults: pd.DataFrame | None = None,
    visits: pd.DataFrame | None = None,
    min_lead_hours: float = 24.0,
    chunk_machines: int = CHUNK_MACHINES,
    types: Mapping[str, Mapping[str, SensorSpec]] | None = None,
    **params: object,
) -> dict:
    """Per machine type and pooled: alert precision/recall, lead time, false alarms, Brier, RUL RMSE.

    `no_faults` (machine, ts, machine_type) are technicians' findings and `visits` their visits without
    finding (`make_targets`); training sees those before `split`. A test alert with such a visit within its
    horizon and no failure or found wear is unjudged (`episodes.alert_metrics`): counted in
    `unjudged_alerts`, left out of precision and false alarms.
    `types` (type: its sensor specs) gives the models what the scorer's get at load (`use_types`): the
    OEM alarm limits then alert as they do live.
    """
    if visits is None:  # none known: every test alert is judged, and the figures say so
        visits = pd.DataFrame(columns=["machine", "ts", "machine_type"])
    ts_all = pd.to_datetime(panel["ts"], utc=True)
    end = ts_all.max()
    out: dict = {"split": split.isoformat(), "end": end.isoformat(), "types": {}}
    pooled_alerts, pooled_fail, pooled_maint, briers, rul_pairs = [], [], [], [], []
    months_total = 0.0
    for mtype, part in panel.groupby("machine_type", observed=True, sort=True):
        part = part.reset_index(drop=True)
        f_type = failures[failures["machine_type"] == mtype]
        m_type = None if maintenance is None else maintenance[maintenance["machine_type"] == mtype]
        started = time.perf_counter()
        nf_type, v_type = (None if m is None else m[m["machine_type"] == mtype] for m in (no_faults, visits))
        model, train_metrics = train_type(
            part, f_type, m_type, no_faults=nf_type, visits=v_type, until=split, **params
        )
        if types and mtype in types:
            model.use_types(types[mtype])
        fit_s = time.perf_counter() - started
        ts = pd.to_datetime(part["ts"], utc=True)
        test = (ts >= split).to_numpy()
        y = make_targets(part, f_type, m_type)
        ttf = y["ttf_h"].to_numpy(dtype=float)
        rul_rows = test & (ttf <= model.horizon_hours) & y["precursor"].to_numpy() & ~y["caught"].to_numpy()
        risk, rul = _scores(model, part, rul_rows, chunk_machines)
        _, alerts = champion.window_alerts(model, part, split, risk=risk)
        f_test = f_type[
            (pd.to_datetime(f_type["ts"], utc=True) >= split + pd.Timedelta(hours=min_lead_hours))
        ]
        m_test = None if m_type is None else m_type[pd.to_datetime(m_type["ts"], utc=True) >= split]
        months = part["machine"].nunique() * (end - split).total_seconds() / 86400.0 / 30.0
        stats = episodes.alert_metrics(
            alerts,
            f_test,
            m_test,
            horizon_hours=model.horizon_hours,
            machine_months=months,
            min_lead_hours=min_lead_hours,
            end=end,
            visits=v_type,
        )
        positive, known = within(y, model.horizon_hours)
        scored = test & known & ~np.isnan(risk)
        brier = float(np.mean((risk[scored] - positive[scored]) ** 2)) if scored.any() else None
        briers.append((risk[scored], positive[scored]))
        rul_stats = _rul(ttf, rul)
        rul_pairs.append(rul_stats.pop("_pairs"))
        out["types"][str(mtype)] = {
            "machines": int(part["machine"].nunique()),
            "threshold": model.threshold_,
            "fit_seconds": round(fit_s, 1),
            "train": train_metrics,
            "test": stats,
            "brier": brier,
            "base_rate": float(positive[scored].mean()) if scored.any() else None,
            "rul": rul_stats,
        }
        pooled_alerts.append(alerts)
        pooled_fail.append(f_test)
        if m_test is not None:
            pooled_maint.append(m_test)
        months_total += months
    alerts = (
        pd.concat(pooled_alerts, ignore_index=True)
        if pooled_alerts
        else pd.DataFrame(columns=["machine", "start"])
    )
    out["pooled"] = episodes.alert_metrics(
        alerts,
        pd.concat(pooled_fail, ignore_index=True),
        pd.concat(pooled_maint, ignore_index=True) if pooled_maint else None,
        horizon_hours=float(params.get("horizon_hours", 168.0)),
        machine_months=months_total,
        min_lead_hours=min_lead_hours,
        end=end,
        visits=visits,
    )
    r = np.concatenate([b[0] for b in briers]) if briers else np.zeros(0)
    p = np.concatenate([b[1] for b in briers]) if briers else np.zeros(0)
    out["pooled"]["brier"] = float(np.mean((r - p) ** 2)) if len(r) else None
    out["pooled"]["brier_base_rate"] = float(np.mean((p.mean() - p) ** 2)) if len(p) else None
    true = np.concatenate([t for t, _, _, _ in rul_pairs]) if rul_pairs else np.zeros(0)
    pred = np.concatenate([q for _, q, _, _ in rul_pairs]) if rul_pairs else np.zeros(0)
    low = np.concatenate([lo for _, _, lo, _ in rul_pairs]) if rul_pairs else np.zeros(0)
    high = np.concatenate([h for _, _, _, h in rul_pairs]) if rul_pairs else np.zeros(0)
    out["pooled"]["rul_rmse_hours"] = metrics.rmse(true, pred) if len(true) else None
    out["pooled"]["rul_interval_coverage"] = metrics.coverage(true, low, high) if len(true) else None
    out["pooled"]["machine_months"] = months_total
    return out


def _scores(
    model,  # noqa: ANN001
    part: pd.DataFrame,
    rul_rows: np.ndarray,
    chunk_machines: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Risk at every row, and RUL point/low/high at `rul_rows` (NaN elsewhere), by chunks of machines."""
    risk = np.full(len(part), np.nan)
    rul = np.full((len(part), 3), np.nan)
    machines = part["machine"].astype(str).to_numpy()
    names = np.unique(machines)
    for start in range(0, len(names), chunk_machines):
        rows = np.flatnonzero(np.isin(machines, names[start : start + chunk_machines]))
        chunk = part.iloc[rows].reset_index(drop=True)
        risk[rows], _ = model.risk_rows(chunk)
        if rul_rows[rows].any():
            table = model.features_.transform(chunk)
            ok = rul_rows[rows] & model.features_.sufficient(table)
            if ok.any():
                rul[rows[ok]] = np.column_stack(model.rul_.interval_table(table[ok]))
    return risk, rul


def _rul(ttf: np.ndarray, rul: np.ndarray) -> dict:
    """RUL error on test rows within 7 days before a precursor failure (where a technician needs it)."""
    ok = ~np.isnan(rul[:, 0])
    if not ok.any():
        return {"rows": 0, "rmse_hours": None, "_pairs": (np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))}
    true, (pred, low, high) = ttf[ok], rul[ok].T
    return {
        "rows": int(ok.sum()),
        "rmse_hours": metrics.rmse(true, pred),
        "interval_coverage": metrics.coverage(true, low, high),
        "_pairs": (true, pred, low, high),
    }


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def summary(result: dict) -> str:
    """The pooled figures in one line ("–" where there was nothing to measure, e.g. no alert)."""
    p = result["pooled"]
    return (
        f"precision {_fmt(p['precision'])}, recall>=24h {_fmt(p['precursor']['recall_min_lead'])}, "
        f"false alarms/machine-month {_fmt(p['false_alarms_per_machine_month'])}"
    )


def write_report(result: dict, folder: Path) -> Path:
    """Markdown report (and the result as JSON) in `folder`; returns the Markdown path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "backtest.json").write_text(json.dumps(result, indent=2, default=str))
    p = result["pooled"]
    lines = [
        "# Fleet failure-forecast backtest",
        "",
        f"Trained before {result['split']}, tested from then to {result['end']}.",
        "",
        "| metric | pooled |",
        "|---|---|",
        f"| alerts | {p['alerts']} |",
        f"| unjudged: a visit without finding within the horizon, no failure | {p['unjudged_alerts']} |",
        f"| precision (failure or found wear within horizon) | {_fmt(p['precision'])} |",
        f"| precision (failures only) | {_fmt(p['precision_failures_only'])} |",
        f"| false alarms per machine-month | {_fmt(p['false_alarms_per_machine_month'])} |",
        f"| precursor failures | {p['precursor']['failures']} |",
        f"| recall, alerted ≥ 24 h ahead | {_fmt(p['precursor']['recall_min_lead'])} |",
        f"| median lead time (h) | {_fmt(p['precursor']['median_lead_hours'])} |",
        f"| sudden failures | {p['sudden']['failures']} |",
        f"| sudden failures alerted ≥ 24 h ahead | {_fmt(p['sudden']['recall_min_lead'])} |",
        f"| Brier score (base-rate forecast) | {_fmt(p['brier'])} ({_fmt(p['brier_base_rate'])}) |",
        f"| RUL RMSE (h), last 7 days before failure | {_fmt(p['rul_rmse_hours'])} |",
        f"| RUL 80 % interval coverage | {_fmt(p['rul_interval_coverage'])} |",
        "",
        "| type | machines | threshold | precision | recall ≥ 24 h | median lead h | false alarms per "
        "machine-month | Brier |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, t in result["types"].items():
        s = t["test"]
        lines.append(
            f"| {name} | {t['machines']} | {_fmt(t['threshold'])} | {_fmt(s['precision'])} | "
            f"{_fmt(s['precursor']['recall_min_lead'])} | {_fmt(s['precursor']['median_lead_hours'])} | "
            f"{_fmt(s['false_alarms_per_machine_month'])} | {_fmt(t['brier'])} |"
        )
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
