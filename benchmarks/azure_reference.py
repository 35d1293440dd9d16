"""The pinned reference of the Azure benchmark: the Azure modelling guide's features and labels.

Features per machine-hour: 3 h and 24 h rolling mean and standard deviation of each sensor, 24 h counts of
each error code, hours since the last replacement of each component, machine model (one-hot) and age.
Label per component: it fails within 24 h. One HistGradientBoostingClassifier (default parameters,
random_state=0) per component; its threshold maximises hourly F1 on machine-wise out-of-fold predictions
inside the training machines. Pinned by issue 13: do not weaken it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import GroupKFold

SENSORS = ("volt", "rotate", "pressure", "vibration")
LABEL_HOURS = 24
INNER_FOLDS = 4


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    if "datetime" in frame:
        frame["datetime"] = pd.to_datetime(frame["datetime"], utc=True)
    return frame


def table(files: dict[str, Path]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """One row per machine-hour with the guide's features, label columns per component; feature names."""
    tel = _read(files["telemetry"]).sort_values(["machineID", "datetime"]).reset_index(drop=True)
    errors, maint = _read(files["errors"]), _read(files["maint"])
    failures, machines = _read(files["failures"]), _read(files["machines"])
    grouped = tel.groupby("machineID")[list(SENSORS)]
    out = tel[["machineID", "datetime"]].copy()
    for hours in (3, 24):
        mean = grouped.rolling(hours, min_periods=1).mean().reset_index(level=0, drop=True)
        std = grouped.rolling(hours, min_periods=2).std().reset_index(level=0, drop=True)
        for s in SENSORS:
            out[f"{s}_mean_{hours}h"], out[f"{s}_sd_{hours}h"] = mean[s], std[s]
    codes = sorted(errors["errorID"].unique()) if len(errors) else []
    hits = errors.assign(n=1).pivot_table(
        index=["machineID", "datetime"], columns="errorID", values="n", aggfunc="sum", fill_value=0
    )
    hourly = out[["machineID", "datetime"]].join(hits, on=["machineID", "datetime"]).fillna(0.0)
    for code in codes:
        out[f"{code}_count_24h"] = (
            hourly.groupby("machineID")[code].rolling(24, min_periods=1).sum().reset_index(level=0, drop=True)
        )
    comps = sorted(set(maint["comp"]) | set(failures["failure"]))
    for comp in comps:
        marks = maint[maint["comp"] == comp][["machineID", "datetime"]].rename(columns={"datetime": "last"})
        merged = pd.merge_asof(
            out[["machineID", "datetime"]].reset_index().sort_values("datetime"),
            marks.sort_values("last"),
            left_on="datetime",
            right_on="last",
            by="machineID",
        ).set_index("index")
        out[f"{comp}_since_h"] = (
            (merged["datetime"] - merged["last"]).dt.total_seconds() / 3600
        ).sort_index()
    info = machines.set_index("machineID")
    out["age"] = out["machineID"].map(info["age"]).astype(float)
    for model in sorted(info["model"].unique()):
        out[f"model_{model}"] = (out["machineID"].map(info["model"]) == model).astype(float)
    features = [c for c in out.columns if c not in ("machineID", "datetime")]
    for comp in comps:
        out[f"y_{comp}"] = _label(out, failures[failures["failure"] == comp])
    return out, features, comps


def _label(rows: pd.DataFrame, failures: pd.DataFrame) -> np.ndarray:
    """True where the machine fails within the next 24 h (the failure hour included)."""
    right = failures[["machineID", "datetime"]].rename(columns={"datetime": "fail"}).sort_values("fail")
    left = rows[["machineID", "datetime"]].reset_index().sort_values("datetime")
    merged = pd.merge_asof(
        left, right, left_on="datetime", right_on="fail", by="machineID", direction="forward"
    )
    hours = (merged["fail"] - merged["datetime"]).dt.total_seconds() / 3600
    return pd.Series((hours < LABEL_HOURS).to_numpy(), index=merged["index"]).sort_index().to_numpy()


def _model() -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(random_state=0)


def _threshold(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """The threshold maximising hourly F1 on machine-wise out-of-fold predictions."""
    folds = min(INNER_FOLDS, len(np.unique(groups)))
    oof = np.zeros(len(y))
    for fit, held in GroupKFold(n_splits=folds).split(x, y, groups):
        oof[held] = _model().fit(x[fit], y[fit]).predict_proba(x[held])[:, 1] if y[fit].any() else 0.0
    if not y.any():
        return 1.0
    precision, recall, thresholds = precision_recall_curve(y, oof)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def alert_hours(
    rows: pd.DataFrame, features: list[str], comps: list[str], train: set, test: set
) -> pd.DataFrame:
    """Hours of the test machines at or above each component model's threshold: machine, component, ts."""
    fit, held = rows["machineID"].isin(train).to_numpy(), rows["machineID"].isin(test).to_numpy()
    x = rows[features].to_numpy(dtype=float)
    groups = rows["machineID"].to_numpy()
    parts = []
    for comp in comps:
        y = rows[f"y_{comp}"].to_numpy(dtype=bool)
        if not y[fit].any():
            continue
        threshold = _threshold(x[fit], y[fit], groups[fit])
        risk = _model().fit(x[fit], y[fit]).predict_proba(x[held])[:, 1]
        hit = rows.loc[held].loc[risk >= threshold]
        parts.append(
            pd.DataFrame({"machine": hit["machineID"].astype(str), "component": comp, "ts": hit["datetime"]})
        )
    return (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["machine", "component", "ts"])
    )
