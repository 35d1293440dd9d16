"""Causal rolling-window features for the simulated fleet's long panel (machine, ts, state, sensors).

One machine type at a time (each type has its own sensors). Every feature of a row uses only that
machine's rows up to it, so training (all rows) and scoring (each machine's last row) share one code path.
Per sensor: the reading is compared with the same hour on earlier days (operating-regime normalisation:
daily demand and shift patterns cancel), then summarised as level, slope, volatility and exponentially
weighted trends; per machine: hours since the last stop (maintenance or repair) and data coverage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from models.features import group_starts, prefix_sums, range_sum

RUNNING = "running"
META = {"tenant", "machine", "machine_id", "customer_id", "machine_type", "seq", "ts", "state"}
KINDS = ("dev6", "dev24", "vol24", "slope24", "ewm_fast", "trend", "level")


def rolling_mean(x: np.ndarray, starts: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean over the last `w` rows of each group, and how many values it used."""
    idx = np.arange(len(x))
    lo = np.maximum(idx - w + 1, starts)
    ok = ~np.isnan(x)
    cs, cn = prefix_sums(np.where(ok, x, 0.0)), prefix_sums(ok.astype(float))
    n = cn[idx + 1] - cn[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (cs[idx + 1] - cs[lo]) / n, n


def rolling_slope(z: np.ndarray, starts: np.ndarray, w: int) -> np.ndarray:
    """Least-squares slope per row over the last `w` rows of each group (z has no NaN)."""
    idx = np.arange(len(z))
    lo = np.maximum(idx - w + 1, starts)
    pos = (idx - starts).astype(float)[:, None]
    cnt = (idx + 1 - lo).astype(float)[:, None]
    sy, sxy, sx, sxx = (range_sum(v, lo, idx + 1) for v in (z, pos * z, pos, pos**2))
    den = cnt * sxx - sx**2
    return np.divide(cnt * sxy - sx * sy, den, out=np.zeros_like(sy), where=den > 1e-9)


def ewm(z: np.ndarray, starts: np.ndarray, span: float) -> np.ndarray:
    """Exponentially weighted mean per group, started at each group's first value (z has no NaN)."""
    a = 2.0 / (span + 1.0)
    out = np.empty_like(z)
    bounds = np.append(np.unique(starts), len(z))
    for b, e in zip(bounds[:-1], bounds[1:], strict=True):
        out[b:e] = lfilter([a], [1.0, a - 1.0], z[b:e], axis=0, zi=((1.0 - a) * z[b])[None, :])[0]
    return out


def lagged(x: np.ndarray, starts: np.ndarray, k: int) -> np.ndarray:
    """x shifted down by k rows within each group (NaN before the group has k rows)."""
    out = np.full_like(x, np.nan)
    idx = np.arange(k, len(x))
    ok = idx - k >= starts[idx]
    out[idx[ok]] = x[idx[ok] - k]
    return out


def ffill(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Carry the last valid value forward within each group; values before the first valid one are 0."""
    rows = np.arange(len(x))[:, None]
    last = np.maximum.accumulate(np.where(~np.isnan(x), rows, -1), axis=0) if len(x) else rows
    ok = last >= starts[:, None]
    return np.where(ok, x[np.maximum(last, 0), np.arange(x.shape[1])], 0.0)


class FleetFeatures(TransformerMixin, BaseEstimator):
    """Per-machine, per-sensor window features for one machine type; vectorised over all machines.

    `baseline_days` are the earlier days whose same hour is the reference of each reading: deviation =
    (reading - reference) / |reference|. Sensors absent at transform time come out as NaN features (the
    boosted models downstream accept NaN); rows of stopped machines count as missing readings.
    """

    def __init__(
        self,
        *,
        sensors: Sequence[str] | None = None,
        machine_col: str = "machine",
        time_col: str = "ts",
        short_hours: float = 6.0,
        window_hours: float = 24.0,
        fast_span_hours: float = 6.0,
        slow_span_hours: float = 48.0,
        baseline_days: Sequence[int] = (2, 3, 4, 5, 6),
        min_history_hours: float = 72.0,
    ):
        self.sensors = sensors
        self.machine_col = machine_col
        self.time_col = time_col
        self.short_hours = short_hours
        self.window_hours = window_hours
        self.fast_span_hours = fast_span_hours
        self.slow_span_hours = slow_span_hours
        self.baseline_days = baseline_days
        self.min_history_hours = min_history_hours

    def fit(self, X: pd.DataFrame, y: object = None) -> FleetFeatures:
        """Pick the sensors this type reports, the step size, and fleet-wide level scales."""
        running = _running(X)
        if self.sensors is not None:
            candidates = list(self.sensors)
        else:
            candidates = [c for c in X.columns if c not in META and pd.api.types.is_float_dtype(X[c])]
            candidates = [c for c in candidates if X.loc[running, c].notna().mean() > 0.5]
        values = X.loc[running, candidates].astype(float)
        self.sensors_ = list(candidates)
        self.median_ = values.median().fillna(0.0).to_numpy()
        iqr = (values.quantile(0.75) - values.quantile(0.25)).fillna(0.0).to_numpy()
        self.spread_ = np.where(iqr > 1e-9, iqr, 1.0)
        self.floor_ = np.maximum(np.abs(self.median_) * 0.05, 1e-6)
        self.step_hours_ = _step_hours(X, self.machine_col, self.time_col)
        self.feature_names_ = [f"{s}__{k}" for s in self.sensors_ for k in KINDS] + [
            "since_stop_h",
            "coverage",
            "history_h",
        ]
        return self

    def lookback_hours(self) -> float:
        """Hours of history behind a row that its features can use (the scorer reads this much)."""
        return max(self.baseline_days) * 24.0 + self.window_hours

    def rows(self, hours: float) -> int:
        """Rows covering `hours` at the fitted step."""
        check_is_fitted(self, "sensors_")
        return max(1, round(hours / self.step_hours_))

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Feature table with one row per input row, same order and index."""
        check_is_fitted(self, "sensors_")
        order = np.lexsort((time_ns(X[self.time_col]), _codes(X[self.machine_col])))
        keys = _codes(X[self.machine_col])[order]
        starts = group_starts(keys)
        running = _running(X)[order]
        raw = (
            np.column_stack(
                [
                    X[s].to_numpy(dtype=float)[order] if s in X.columns else np.full(len(X), np.nan)
                    for s in self.sensors_
                ]
            )
            if self.sensors_
            else np.empty((len(X), 0))
        )
        raw[~running] = np.nan
        day = self.rows(24.0)
        lags = np.stack([lagged(raw, starts, d * day) for d in self.baseline_days])
        n_base = (~np.isnan(lags)).sum(axis=0)
        base = np.divide(np.nansum(lags, axis=0), n_base, out=np.full_like(raw, np.nan), where=n_base > 0)
        dev = (raw - base) / np.maximum(np.abs(base), self.floor_)
        wshort, wday = self.rows(self.short_hours), self.rows(self.window_hours)
        dev6, _ = rolling_mean(dev, starts, wshort)
        dev24, n24 = rolling_mean(dev, starts, wday)
        sq24, _ = rolling_mean(dev**2, starts, wday)
        vol24 = np.sqrt(np.maximum(sq24 - dev24**2, 0.0))
        filled = ffill(dev, starts)
        slope24 = rolling_slope(filled, starts, wday) * day
        fast = ewm(filled, starts, self.fast_span_hours / self.step_hours_)
        slow = ewm(filled, starts, self.slow_span_hours / self.step_hours_)
        raw24, _ = rolling_mean(raw, starts, wday)
        level = (raw24 - self.median_) / self.spread_
        blocks = (dev6, dev24, vol24, slope24, fast, fast - slow, level)
        missing = n24 == 0
        for b in blocks:
            b[missing] = np.nan
        idx = np.arange(len(X))
        stop = np.where(running, -1, idx)
        last_stop = np.maximum.accumulate(np.maximum(stop, starts - 1)) if len(X) else stop
        since = np.where(last_stop >= starts, idx - last_stop, idx - starts + 1) * self.step_hours_
        # The scorer reads one lookback of history: cap what depends on history length at it, so that
        # training rows (months of history) and scored rows (one lookback) mean the same thing.
        cap = self.lookback_hours()
        since = np.minimum(since, cap)
        cover = (
            (n24.sum(axis=1) / max(1, wday * len(self.sensors_))) if len(self.sensors_) else np.zeros(len(X))
        )
        columns = np.empty((len(X), len(self.feature_names_)))
        k = len(KINDS)
        for j in range(len(self.sensors_)):
            for i, b in enumerate(blocks):
                columns[:, j * k + i] = b[:, j]
        columns[:, -3] = since
        columns[:, -2] = cover
        columns[:, -1] = np.minimum((idx - starts + 1) * self.step_hours_, cap)
        out = np.empty_like(columns)
        out[order] = columns
        return pd.DataFrame(out, columns=self.feature_names_, index=X.index)

    def last_rows(self, X: pd.DataFrame) -> np.ndarray:
        """Positions of each machine's latest row, ordered by machine."""
        codes = _codes(X[self.machine_col])
        order = np.lexsort((time_ns(X[self.time_col]), codes))
        last = np.ones(len(order), dtype=bool)
        last[:-1] = codes[order][1:] != codes[order][:-1]
        return order[last]

    def sufficient(self, table: pd.DataFrame) -> np.ndarray:
        """True where a row has enough history and recent readings to be scored."""
        return ((table["history_h"] >= self.min_history_hours) & (table["coverage"] >= 0.5)).to_numpy()


def time_ns(values: pd.Series) -> np.ndarray:
    """Timestamps as int64 nanoseconds, without going through Python objects (tz-aware or naive)."""
    values = pd.Series(values)
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.as_unit("ns").array.asi8 if hasattr(values.array, "asi8") else values.astype("int64")
    return pd.to_datetime(values, utc=True).dt.as_unit("ns").array.asi8


def _codes(keys: pd.Series) -> np.ndarray:
    return pd.factorize(keys.to_numpy(), sort=True)[0] if len(keys) else np.zeros(0, dtype=np.int64)


def _running(X: pd.DataFrame) -> np.ndarray:
    if "state" not in X.columns:
        return np.ones(len(X), dtype=bool)
    state = X["state"].astype(object).to_numpy()
    return (state == RUNNING) | pd.isna(state)


def _step_hours(X: pd.DataFrame, machine_col: str, time_col: str) -> float:
    """The typical spacing of a machine's rows, in hours."""
    if len(X) < 2:
        return 1.0
    ts = time_ns(X[time_col])
    order = np.lexsort((ts, _codes(X[machine_col])))
    keys, ts = _codes(X[machine_col])[order], ts[order]
    same = keys[1:] == keys[:-1]
    gaps = np.diff(ts)[same]
    gaps = gaps[gaps > 0]
    return float(np.median(gaps) / 3.6e12) if len(gaps) else 1.0
