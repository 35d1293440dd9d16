"""Causal rolling-window features over a long panel (one row per unit and time step, one column per sensor).

Each row's features use only that unit's rows up to and including it, so a series cut at any point gets the
same features at its last row as the full series has at that row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.linear_model import Ridge
from sklearn.utils.validation import check_is_fitted

HEALTH = "health"


def group_starts(units: np.ndarray) -> np.ndarray:
    """Position of the first row of each row's unit (or group), for rows already sorted by it."""
    new = np.ones(len(units), dtype=bool)
    new[1:] = units[1:] != units[:-1]
    return np.flatnonzero(new)[np.cumsum(new) - 1]


def one_row_per_time(panel: pd.DataFrame, machine_col: str = "machine", time_col: str = "ts") -> pd.DataFrame:
    """The panel with the rows of a machine at one time merged: each column's last value by `seq`.

    The store keys rows by seq, so a reading can be stored twice at one time (a history import derives
    seqs from times, over a period the machine also sent live); window features count rows, and twice the
    rows would halve each window and compare readings with the wrong hour of earlier days.
    """
    if not panel.duplicated([machine_col, time_col]).any():
        return panel
    ordered = panel.sort_values("seq", kind="stable") if "seq" in panel.columns else panel
    merged = ordered.groupby([machine_col, time_col], sort=True, as_index=False, observed=True).last()
    return merged[list(panel.columns)]


def prefix_sums(a: np.ndarray) -> np.ndarray:
    """Cumulative sum along rows with a leading zero row, so sum(a[lo:hi]) = c[hi] - c[lo]."""
    return np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)])


def range_sum(a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """sum(a[lo:hi]) for each pair of bounds."""
    c = prefix_sums(a)
    return c[hi] - c[lo]


def _window_stats(z: np.ndarray, starts: np.ndarray, window: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and least-squares slope per step over the last `window` rows of each unit (None: all rows)."""
    n = len(z)
    idx = np.arange(n)
    lo = starts if window is None else np.maximum(idx - window + 1, starts)
    pos = (idx - starts).astype(float)[:, None]
    cnt = (idx + 1 - lo).astype(float)[:, None]
    sy, sxy, sx, sxx = (range_sum(v, lo, idx + 1) for v in (z, pos * z, pos, pos**2))
    den = cnt * sxx - sx**2
    slope = np.divide(cnt * sxy - sx * sy, den, out=np.zeros_like(sy), where=den > 1e-9)
    return sy / cnt, slope


def _window_extremes(z: np.ndarray, starts: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum over the last `window` rows of each unit."""
    idx = np.arange(len(z))
    lo, hi = z.copy(), z.copy()
    for k in range(1, window):
        src = idx - k
        shifted = np.where((src >= starts)[:, None], z[np.maximum(src, 0)], z)
        np.minimum(lo, shifted, out=lo)
        np.maximum(hi, shifted, out=hi)
    return lo, hi


def _ewm(z: np.ndarray, starts: np.ndarray, span: int) -> np.ndarray:
    """Exponentially weighted mean per unit, started at each unit's first value."""
    a = 2.0 / (span + 1.0)
    out = np.empty_like(z)
    bounds = np.append(np.unique(starts), len(z))
    for b, e in zip(bounds[:-1], bounds[1:], strict=True):
        out[b:e] = lfilter([a], [1.0, a - 1.0], z[b:e], axis=0, zi=((1.0 - a) * z[b])[None, :])[0]
    return out


class WindowFeatures(TransformerMixin, BaseEstimator):
    """Condition-normalised sensors summarised over trailing windows: last, means, slopes, EWM, min/max,
    drift from the unit's own early-life baseline, plus the unit's age in steps.

    With a target at fit time it also learns a linear health index (ridge on normalised sensors vs the
    capped remaining life) and summarises it like a sensor. Sensors missing at transform time are imputed
    as their healthy mean; NaN readings are carried forward within the unit.
    """

    def __init__(
        self,
        *,
        unit_col: str = "unit",
        time_col: str = "cycle",
        sensors: Sequence[str] | None = None,
        condition_cols: Sequence[str] = (),
        n_conditions: int = 1,
        windows: Sequence[int] = (5, 15, 30),
        slope_windows: Sequence[int] = (15, 30),
        extreme_window: int = 15,
        ewm_span: int = 10,
        baseline: int = 20,
        health_index: bool = True,
        health_cap: float = 125.0,
        random_state: int = 0,
    ):
        self.unit_col = unit_col
        self.time_col = time_col
        self.sensors = sensors
        self.condition_cols = condition_cols
        self.n_conditions = n_conditions
        self.windows = windows
        self.slope_windows = slope_windows
        self.extreme_window = extreme_window
        self.ewm_span = ewm_span
        self.baseline = baseline
        self.health_index = health_index
        self.health_cap = health_cap
        self.random_state = random_state

    def _conditions(self, X: pd.DataFrame) -> np.ndarray:
        """Operating-condition label per row (all zero with one condition)."""
        if self.condition_model_ is None:
            return np.zeros(len(X), dtype=int)
        return self.condition_model_.predict(X[list(self.condition_cols)].to_numpy(dtype=float))

    def fit(self, X: pd.DataFrame, y: np.ndarray | None = None) -> WindowFeatures:
        """Pick non-constant sensors, learn per-condition scaling and, given y, the health index."""
        skip = {self.unit_col, self.time_col, *self.condition_cols}
        candidates = self.sensors or [c for c in X.columns if c not in skip and is_numeric(X[c])]
        self.condition_model_ = None
        if self.n_conditions > 1:
            km = KMeans(n_clusters=self.n_conditions, n_init=10, random_state=self.random_state)
            self.condition_model_ = km.fit(X[list(self.condition_cols)].to_numpy(dtype=float))
        cond = self._conditions(X)
        values = X[list(candidates)].to_numpy(dtype=float)
        stats = pd.DataFrame(values, columns=list(candidates)).groupby(cond)
        self.mean_ = stats.mean()
        self.scale_ = stats.std(ddof=0).fillna(0.0)
        self.sensors_ = [c for c in candidates if (self.scale_[c] > 1e-9 * (1 + self.mean_[c].abs())).all()]
        self.mean_, self.scale_ = self.mean_[self.sensors_], self.scale_[self.sensors_]
        self.health_ = None
        if self.health_index and y is not None:
            frame, z = self._normalised(X)
            life = np.asarray(y, dtype=float)[frame["_row"].to_numpy()]
            target = np.minimum(life, self.health_cap) / self.health_cap
            self.health_ = Ridge(alpha=1.0).fit(z, target)
        return self

    def _normalised(self, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """Rows sorted by unit and time, and their sensors as z-scores within the operating condition."""
        cols = [self.unit_col, self.time_col, *self.condition_cols]
        frame = X[cols].copy()
        for s in self.sensors_:
            frame[s] = X[s].to_numpy(dtype=float) if s in X.columns else np.nan
        frame["_row"] = np.arange(len(X))
        frame = frame.sort_values([self.unit_col, self.time_col], kind="mergesort")
        frame[self.sensors_] = frame.groupby(self.unit_col, sort=False)[self.sensors_].ffill()
        cond = self._conditions(frame)
        mean = self.mean_.reindex(cond).to_numpy()
        scale = self.scale_.reindex(cond).to_numpy()
        z = (frame[self.sensors_].to_numpy(dtype=float) - mean) / np.where(scale > 0, scale, 1.0)
        return frame, np.nan_to_num(z, nan=0.0)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Feature table with one row per input row, in the input's order and index."""
        check_is_fitted(self, "sensors_")
        frame, z = self._normalised(X)
        names = list(self.sensors_)
        if self.health_ is not None:
            z = np.column_stack([z, self.health_.predict(z)])
            names.append(HEALTH)
        starts = group_starts(frame[self.unit_col].to_numpy())
        blocks: dict[str, np.ndarray] = {"last": z}
        for w in sorted(set(self.windows) | set(self.slope_windows)):
            mean, slope = _window_stats(z, starts, w)
            if w in self.windows:
                blocks[f"mean{w}"] = mean
            if w in self.slope_windows:
                blocks[f"slope{w}"] = slope
        blocks["slope_all"] = _window_stats(z, starts, None)[1]
        blocks[f"min{self.extreme_window}"], blocks[f"max{self.extreme_window}"] = _window_extremes(
            z, starts, self.extreme_window
        )
        blocks[f"ewm{self.ewm_span}"] = _ewm(z, starts, self.ewm_span)
        idx = np.arange(len(z))
        first = np.minimum(starts + self.baseline, idx + 1)
        base = range_sum(z, starts, first) / (first - starts)[:, None]
        blocks["drift"] = blocks[f"ewm{self.ewm_span}"] - base
        columns = {f"{s}__{k}": v[:, j] for k, v in blocks.items() for j, s in enumerate(names)}
        columns["age"] = (idx - starts + 1).astype(float)
        out = np.empty((len(z), len(columns)))
        out[frame["_row"].to_numpy()] = np.column_stack(list(columns.values()))
        return pd.DataFrame(out, columns=list(columns), index=X.index)


def is_numeric(series: pd.Series) -> bool:
    """True for numeric, non-boolean columns."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
