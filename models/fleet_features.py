"""Causal rolling-window features for the simulated fleet's long panel (machine, ts, state, sensors).

One machine type at a time (each type has its own sensors). Every feature of a row uses only that
machine's rows up to it, so training (all rows) and scoring (each machine's last row) share one code path.
Per sensor: the reading is compared with the same hour on earlier days (operating-regime normalisation:
daily demand and shift patterns cancel), then summarised as level, slope, volatility and exponentially
weighted trends; per machine: hours since the last stop (maintenance or repair) and data coverage.
"Same hour" is local time where the panel gives a machine's time zone (`ZONE`, its site's): a fleet
working shifts by the clock keeps its reference across a daylight-saving switch.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from models import time_base
from models.event_features import PREFIX as EVENT_PREFIX
from models.features import group_starts, prefix_sums, range_sum

RUNNING = "running"
ZONE = "timezone"  # optional panel column: the machine's IANA time zone; absent, empty or "UTC": UTC
META = {"tenant", "machine", "machine_id", "customer_id", "machine_type", "seq", "ts", "state", ZONE}
KINDS = ("dev6", "dev24", "vol24", "slope24", "ewm_fast", "trend", "level")
EXTREMES = ("any__level_absmax", "any__dev24_absmax")  # `FleetFeatures(extremes=True)`
SENSOR_HEALTH = ("any__spikes24", "any__jump", "any__z24_gap", "any__z24_share")  # `sensor_health=True`
SPIKE_SD = 4.0  # a one-step change this many robust sds of the fleet's changes counts as a jump
HEALTH_SAMPLE_MACHINES = 50  # machines whose rows give the fleet's robust scales at fit
# The window features are differences of running sums over all machines' rows, so one huge reading (the
# contract takes any finite number) would wipe out the precision of every later machine's features and
# overflow the boosting's binning; readings and deviations are clipped to bounds no sensor reaches.
RAW_BOUND, DEV_BOUND = 1e9, 1e4
# Earlier days whose same hour is a reading's reference, per machine type. Pumps and compressors repeat
# their day closely: the two previous days suffice (the scorer reads 3 days). CNC spindles run jobs of
# random speed and load, so their reference averages four days (5 days read): with two, the backtest's
# CNC false alarms rose to 0.67 per machine-month.
BASELINE_DAYS = {"cnc_spindle": (1, 2, 3, 4)}
DEFAULT_BASELINE_DAYS = (1, 2)


def _at(n: int, at: np.ndarray | None) -> np.ndarray:
    return np.arange(n) if at is None else at


def rolling_mean(
    x: np.ndarray, starts: np.ndarray, w: int, at: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean over the last `w` rows of each group, and how many values it used (rows `at`)."""
    idx = _at(len(x), at)
    lo = np.maximum(idx - w + 1, starts[idx])
    ok = ~np.isnan(x)
    cs, cn = prefix_sums(np.where(ok, x, 0.0)), prefix_sums(ok.astype(float))
    n = cn[idx + 1] - cn[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (cs[idx + 1] - cs[lo]) / n, n


def rolling_slope(z: np.ndarray, starts: np.ndarray, w: int, at: np.ndarray | None = None) -> np.ndarray:
    """NaN-aware least-squares slope over the last `w` rows of each group (0 below 2 values), rows `at`."""
    idx = _at(len(z), at)
    lo = np.maximum(idx - w + 1, starts[idx])
    ok = ~np.isnan(z)
    pos = np.where(ok, (np.arange(len(z)) - starts).astype(float)[:, None], 0.0)
    y = np.where(ok, z, 0.0)
    cnt, sy, sxy, sx, sxx = (range_sum(v, lo, idx + 1) for v in (ok.astype(float), y, pos * y, pos, pos**2))
    den = cnt * sxx - sx**2
    return np.divide(cnt * sxy - sx * sy, den, out=np.zeros_like(sy), where=den > 1e-6)


def window_ewm(
    z: np.ndarray, starts: np.ndarray, span: float, w: int, at: np.ndarray | None = None
) -> np.ndarray:
    """NaN-aware exponentially weighted mean over the last `w` rows of each group (weights (1-a)^k, k < w).

    One recursive filter over all rows; the part of the sum older than the window (or from an earlier
    group) is subtracted, so the result depends only on the window, as a scorer reading it would see.
    """
    idx = _at(len(z), at)
    if not len(z):
        return np.full((len(idx), z.shape[1]), np.nan)
    r = 1.0 - 2.0 / (span + 1.0)
    ok = ~np.isnan(z)
    acc = lfilter([1.0], [1.0, -r], np.concatenate([np.where(ok, z, 0.0), ok.astype(float)], axis=1), axis=0)
    cut = np.maximum(idx - w, starts[idx] - 1)  # the newest row left out of each row's window
    older = np.where((cut >= 0)[:, None], acc[np.maximum(cut, 0)], 0.0)
    inside = acc[idx] - (r ** (idx - cut).astype(float))[:, None] * older
    num, den = np.split(inside, 2, axis=1)
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 1e-9)


def lagged(x: np.ndarray, starts: np.ndarray, k: int | np.ndarray) -> np.ndarray:
    """x shifted down by k rows (one k, or one per row) within each group (NaN before the group has them)."""
    out = np.full_like(x, np.nan)
    if not np.isscalar(k):
        src = np.arange(len(x)) - k
        ok = src >= starts
        out[ok] = x[src[ok]]
        return out
    idx = np.arange(k, len(x))
    ok = idx - k >= starts[idx]
    out[idx[ok]] = x[idx[ok] - k]
    return out


def day_lag(
    t: np.ndarray, zones: np.ndarray | None, days: int, day_rows: int, step_h: float
) -> int | np.ndarray:
    """Rows back from each row (time `t`, ns) to the same local clock time `days` days earlier in its
    machine's zone: `days` x `day_rows`, an hour's rows fewer after a switch to summer time (the clock
    skipped an hour), more after the switch back. One int where no zone moves its clock in between."""
    rows = days * day_rows
    if zones is None:
        return rows
    shift = np.zeros(len(t))
    for zone in pd.unique(zones):
        if not isinstance(zone, str) or zone in ("", "UTC"):
            continue
        at = zones == zone
        shift[at] = _utc_offset(t[at], zone) - _utc_offset(t[at] - days * 86_400 * 10**9, zone)
    if not shift.any():
        return rows
    return rows - np.round(shift / (step_h * 3.6e12)).astype(np.int64)


def _utc_offset(t: np.ndarray, zone: str) -> np.ndarray:
    """The zone's UTC offset (ns) at each time `t` (ns)."""
    local = pd.DatetimeIndex(t.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(zone)
    return local.tz_localize(None).asi8 - t


@dataclass(frozen=True, slots=True)
class Prepared:
    """One panel's rows sorted by machine and time, placed on the type's time base (`models.time_base`:
    one grid row per machine and step), with what every feature is computed from."""

    order: np.ndarray  # sorted position -> input row
    keys: np.ndarray  # machine code per grid row (codes follow `machines`)
    starts: np.ndarray  # first grid row of each grid row's machine
    running: np.ndarray
    raw: np.ndarray  # readings, NaN while stopped: grid rows × sensors
    dev: np.ndarray  # deviation from the same (local) hour of the baseline days
    last: np.ndarray  # sorted position of each machine's latest row
    machines: np.ndarray  # machine keys, sorted
    extra: np.ndarray  # event columns (`models.event_features`), passed through: grid rows × extras
    grid: np.ndarray  # sorted position -> grid row


class FleetFeatures(TransformerMixin, BaseEstimator):
    """Per-machine, per-sensor window features for one machine type; vectorised over all machines.

    `baseline_days` are the earlier days whose same hour is the reference of each reading: deviation =
    (reading - reference) / |reference|; None picks them by the panel's `machine_type` (`BASELINE_DAYS`).
    Every feature of a row depends only on its machine's last `lookback_hours()` of rows. Sensors absent
    at transform time come out as NaN features (the boosted models downstream accept NaN); rows of
    stopped machines count as missing readings. Rows are placed on the type's time base first
    (`models.time_base`), so machines sending faster or slower than the type's step get windows of the
    same hours; `step_hours` states the step, None infers it from the data. With `extremes`, two more
    columns (`EXTREMES`): the largest |level| and |24 h deviation| over the sensors, so that a failure
    announced by a sensor that rarely failed in training reads like the common ones. With `sensor_health`,
    four more columns
    (`SENSOR_HEALTH`) that tell a sensor fault from wear, which moves several linked sensors smoothly: the
    most isolated one-step outliers (a jump out and straight back) of any sensor in the last 24 h, the
    largest one-step jump at the row, and of the 24 h deviations in fleet robust sds, the largest minus the
    second largest and the second over the largest (one sensor drifting alone: a wide gap, a small share).
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
        baseline_days: Sequence[int] | None = None,
        min_history_hours: float = 72.0,
        extremes: bool = False,
        sensor_health: bool = False,
        step_hours: float | None = None,
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
        self.extremes = extremes
        self.sensor_health = sensor_health
        self.step_hours = step_hours

    def fit(self, X: pd.DataFrame, y: object = None) -> FleetFeatures:
        """Pick the sensors this type reports, the step size, and fleet-wide level scales."""
        running = _running(X)
        self.extras_ = [c for c in X.columns if str(c).startswith(EVENT_PREFIX)]
        if self.sensors is not None:
            candidates = list(self.sensors)
        else:
            candidates = [
                c
                for c in X.columns
                if c not in META and c not in self.extras_ and pd.api.types.is_float_dtype(X[c])
            ]
            candidates = _reported(X.loc[running], candidates, self.machine_col, self.time_col)
        values = X.loc[running, candidates].astype(float)
        self.sensors_ = list(candidates)
        self.median_ = values.median().fillna(0.0).to_numpy()
        iqr = (values.quantile(0.75) - values.quantile(0.25)).fillna(0.0).to_numpy()
        self.spread_ = np.where(iqr > 1e-9, iqr, 1.0)
        self.floor_ = np.maximum(np.abs(self.median_) * 0.05, 1e-6)
        self.step_hours_ = self.step_hours or _step_hours(X, self.machine_col, self.time_col)
        self.baseline_days_ = tuple(int(d) for d in self.baseline_days or _type_baseline(X))
        self.feature_names_ = (
            [f"{s}__{k}" for s in self.sensors_ for k in KINDS]
            + [
                "since_stop_h",
                "coverage",
                "history_h",
            ]
            + (list(EXTREMES) if self.extremes else [])
            + (list(SENSOR_HEALTH) if self.sensor_health else [])
            + self.extras_
        )
        if self.sensor_health:
            self.step_sd_, self.dev24_sd_ = self._health_scales(X)
        return self

    def _health_scales(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Fleet robust sds per sensor of a one-step change of the deviation and of its 24 h mean."""
        sample = pd.unique(X[self.machine_col])[:HEALTH_SAMPLE_MACHINES]
        prep = self.prepare(X[X[self.machine_col].isin(sample)])
        dev24, _ = rolling_mean(prep.dev, prep.starts, self.rows(self.window_hours))
        return _robust_sd(_step(prep.dev, prep.starts)), _robust_sd(dev24)

    def lookback_hours(self) -> float:
        """Hours of history a row's features depend on, itself included: the scorer reads this much, and
        a panel cut to it gives a machine's last row the same features as its full history."""
        check_is_fitted(self, "baseline_days_")
        return max(self.baseline_days_) * 24.0 + self.window_hours

    def rows(self, hours: float) -> int:
        """Rows covering `hours` at the fitted step."""
        check_is_fitted(self, "sensors_")
        return max(1, round(hours / self.step_hours_))

    def prepare(self, X: pd.DataFrame) -> Prepared:
        """Rows sorted by machine and time, each reading's deviation from the same hour of earlier days."""
        check_is_fitted(self, "sensors_")
        codes, uniques = (
            pd.factorize(X[self.machine_col].to_numpy(), sort=True)
            if len(X)
            else (np.zeros(0, dtype=np.int64), np.zeros(0))
        )
        ts = time_ns(X[self.time_col])
        order = np.lexsort((ts, codes))
        keys = codes[order]
        grid = time_base.layout(keys, ts[order], self.step_hours_, self.window_hours)
        running_rows = _running(X)[order]
        raw = np.empty((len(X), len(self.sensors_)))
        for j, s in enumerate(self.sensors_):
            raw[:, j] = X[s].to_numpy(dtype=float)[order] if s in X.columns else np.nan
        raw[~running_rows] = np.nan
        running = time_base.place_last(grid, running_rows, True)
        grid_keys = keys[grid.reading]
        starts = group_starts(grid_keys)
        raw = time_base.hold(grid, time_base.place(grid, raw), starts, running)
        raw[~running] = np.nan
        np.clip(raw, -RAW_BOUND, RAW_BOUND, out=raw)
        day = self.rows(24.0)
        zones = X[ZONE].to_numpy(dtype=object)[order][grid.reading] if ZONE in X.columns else None
        t_grid = ts[order][grid.reading]
        base_sum, n_base = np.zeros_like(raw), np.zeros_like(raw)
        for d in self.baseline_days_:
            lag = lagged(raw, starts, day_lag(t_grid, zones, d, day, self.step_hours_))
            ok = ~np.isnan(lag)
            base_sum += np.where(ok, lag, 0.0)
            n_base += ok
        base = np.divide(base_sum, n_base, out=np.full_like(raw, np.nan), where=n_base > 0)
        dev = np.clip((raw - base) / np.maximum(np.abs(base), self.floor_), -DEV_BOUND, DEV_BOUND)
        last = np.ones(len(keys), dtype=bool)
        last[:-1] = keys[1:] != keys[:-1]
        extras = getattr(self, "extras_", [])  # a model pickled before event features has none
        extra = (
            np.column_stack(
                [
                    X[c].to_numpy(dtype=float)[order] if c in X.columns else np.full(len(X), np.nan)
                    for c in extras
                ]
            )
            if extras
            else np.zeros((len(X), 0))
        )
        return Prepared(
            order,
            grid_keys,
            starts,
            running,
            raw,
            dev,
            np.flatnonzero(last),
            np.asarray(uniques),
            time_base.place(grid, extra),
            grid.slot,
        )

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Feature table with one row per input row, same order and index."""
        prep = self.prepare(X)
        out = np.empty((len(X), len(self.feature_names_)))
        out[prep.order] = self._columns(prep, prep.grid)
        return pd.DataFrame(out, columns=self.feature_names_, index=X.index)

    def transform_last(self, X: pd.DataFrame, prep: Prepared | None = None) -> pd.DataFrame:
        """`transform(X)` at each machine's latest row only, ordered by machine: what a scorer needs."""
        prep = self.prepare(X) if prep is None else prep
        index = X.index[prep.order[prep.last]]
        return pd.DataFrame(
            self._columns(prep, prep.grid[prep.last]), columns=self.feature_names_, index=index
        )

    def recent(self, prep: Prepared, hours: float, *, raw: bool = False) -> np.ndarray:
        """The short-window deviation (`dev6`) of each machine's last `hours`: sensors × machines × steps,
        left-padded with NaN; machines in `prep.machines` order. `raw` gives the short-window mean of the
        readings themselves instead (in the sensor's unit, for limits given in it)."""
        n = self.rows(hours)
        counts = np.bincount(prep.keys, minlength=len(prep.machines))
        from_end = np.cumsum(counts)[prep.keys] - np.arange(len(prep.keys))
        rows = np.flatnonzero(from_end <= n)
        dev6, _ = rolling_mean(prep.raw if raw else prep.dev, prep.starts, self.rows(self.short_hours), rows)
        out = np.full((len(self.sensors_), len(prep.machines), n), np.nan)
        out[:, prep.keys[rows], n - from_end[rows]] = dev6.T
        return out

    def _columns(self, prep: Prepared, at: np.ndarray) -> np.ndarray:
        """Feature matrix at sorted positions `at` (every rolling window ends at the row itself)."""
        starts, dev, raw = prep.starts, prep.dev, prep.raw
        wshort, wday, day = self.rows(self.short_hours), self.rows(self.window_hours), self.rows(24.0)
        dev6, _ = rolling_mean(dev, starts, wshort, at)
        dev24, n24 = rolling_mean(dev, starts, wday, at)
        sq24, _ = rolling_mean(dev**2, starts, wday, at)
        vol24 = np.sqrt(np.maximum(sq24 - dev24**2, 0.0))
        slope24 = rolling_slope(dev, starts, wday, at) * day
        fast = window_ewm(dev, starts, self.fast_span_hours / self.step_hours_, wday, at)
        slow = window_ewm(dev, starts, self.slow_span_hours / self.step_hours_, wday, at)
        raw24, _ = rolling_mean(raw, starts, wday, at)
        level = (raw24 - self.median_) / self.spread_
        blocks = (dev6, dev24, vol24, slope24, fast, fast - slow, level)
        missing = n24 == 0
        for b in blocks:
            b[missing] = np.nan
        idx = np.arange(len(dev))
        stop = np.where(prep.running, -1, idx)
        last_stop = (np.maximum.accumulate(np.maximum(stop, starts - 1)) if len(dev) else stop)[at]
        first = starts[at]
        since = np.where(last_stop >= first, at - last_stop, at - first + 1) * self.step_hours_
        # The scorer reads one lookback of history: cap what depends on history length at it, so that
        # training rows (months of history) and scored rows (one lookback) mean the same thing.
        cap = self.lookback_hours()
        columns = np.empty((len(at), len(self.feature_names_)))
        k = len(KINDS)
        for i, b in enumerate(blocks):
            columns[:, i : k * len(self.sensors_) : k] = b
        n = k * len(self.sensors_)
        columns[:, n] = np.minimum(since, cap)
        columns[:, n + 1] = n24.sum(axis=1) / max(1, wday * len(self.sensors_)) if len(self.sensors_) else 0.0
        columns[:, n + 2] = np.minimum((at - first + 1) * self.step_hours_, cap)
        n += 3
        if getattr(self, "extremes", False):  # a model pickled before the option has none
            columns[:, n] = _absmax(level)
            columns[:, n + 1] = _absmax(dev24)
            n += 2
        if getattr(self, "sensor_health", False):
            columns[:, n : n + len(SENSOR_HEALTH)] = self._health(prep, at, dev24)
            n += len(SENSOR_HEALTH)
        columns[:, n:] = prep.extra[at]
        return columns

    def _health(self, prep: Prepared, at: np.ndarray, dev24: np.ndarray) -> np.ndarray:
        """The `SENSOR_HEALTH` columns at sorted positions `at`."""
        q = _step(prep.dev, prep.starts) / self.step_sd_
        before = lagged(q, prep.starts, 1)
        with np.errstate(invalid="ignore"):
            spike = (np.abs(q) > SPIKE_SD) & (np.abs(before) > SPIKE_SD) & (q * before < 0)
        lo = np.maximum(at - self.rows(self.window_hours) + 1, prep.starts[at])
        # a spike counts once its two steps lie inside the window: a row's features stay within its lookback
        spikes = range_sum(spike.astype(float), np.minimum(lo + 2, at + 1), at + 1)
        z = np.abs(dev24 / self.dev24_sd_)
        ranked = np.sort(np.where(np.isnan(z), -1.0, z), axis=1)  # NaN sensors sort first
        top = ranked[:, -1] if z.shape[1] else np.full(len(at), -1.0)
        second = ranked[:, -2] if z.shape[1] > 1 else np.full(len(at), -1.0)
        seen = second >= 0
        out = np.full((len(at), len(SENSOR_HEALTH)), np.nan)
        out[:, 0] = spikes.max(axis=1) if spikes.shape[1] else np.nan
        out[:, 1] = _absmax(q[at])
        out[seen, 2] = top[seen] - second[seen]
        out[seen, 3] = np.divide(second[seen], top[seen], out=np.ones(seen.sum()), where=top[seen] > 0)
        return out

    def sufficient(self, table: pd.DataFrame) -> np.ndarray:
        """True where a row has enough history and recent readings to be scored."""
        return ((table["history_h"] >= self.min_history_hours) & (table["coverage"] >= 0.5)).to_numpy()


def time_ns(values: pd.Series) -> np.ndarray:
    """Timestamps as int64 nanoseconds, without going through Python objects (tz-aware or naive)."""
    values = pd.Series(values)
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.as_unit("ns").array.asi8 if hasattr(values.array, "asi8") else values.astype("int64")
    return pd.to_datetime(values, utc=True).dt.as_unit("ns").array.asi8


def _absmax(block: np.ndarray) -> np.ndarray:
    """Per row, the largest absolute value over the sensors (NaN when every sensor is NaN)."""
    a = np.abs(block)
    out = np.full(len(block), np.nan)
    seen = ~np.isnan(a).all(axis=1) if a.shape[1] else np.zeros(len(block), dtype=bool)
    out[seen] = np.nanmax(a[seen], axis=1)
    return out


def _step(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """One-step change within each group (NaN at a group's first row or next to a missing value)."""
    return x - lagged(x, starts, 1)


def _robust_sd(x: np.ndarray) -> np.ndarray:
    """Per column 1.4826 x the median absolute deviation, ignoring NaN (1 where it is 0 or unknown)."""
    if not np.isfinite(x).any():
        return np.ones(x.shape[1])
    with warnings.catch_warnings():  # an all-NaN column (a sensor never read) warns
        warnings.simplefilter("ignore", RuntimeWarning)
        sd = 1.4826 * np.nanmedian(np.abs(x - np.nanmedian(x, axis=0)), axis=0)
    return np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)


def _reported(X: pd.DataFrame, candidates: list[str], machine_col: str, time_col: str) -> list[str]:
    """The candidates read on more than half of the days the machines ran.

    Days, not rows: a bridge that publishes value changes sends each sensor in only some messages.
    """
    day = pd.to_datetime(X[time_col], utc=True).dt.floor("D")
    seen = X[candidates].notna().groupby([X[machine_col].to_numpy(), day.to_numpy()]).any()
    return [c for c in candidates if seen[c].mean() > 0.5]


def _type_baseline(X: pd.DataFrame) -> tuple[int, ...]:
    types = pd.unique(X["machine_type"].astype(str)) if "machine_type" in X.columns else []
    days = {BASELINE_DAYS.get(t, DEFAULT_BASELINE_DAYS) for t in types}
    return max(days, key=max) if days else DEFAULT_BASELINE_DAYS


def _codes(keys: pd.Series) -> np.ndarray:
    return pd.factorize(keys.to_numpy(), sort=True)[0] if len(keys) else np.zeros(0, dtype=np.int64)


def _running(X: pd.DataFrame) -> np.ndarray:
    if "state" not in X.columns:
        return np.ones(len(X), dtype=bool)
    state = X["state"].astype(object).to_numpy()
    return (state == RUNNING) | pd.isna(state)


def _step_hours(X: pd.DataFrame, machine_col: str, time_col: str) -> float:
    """The type's step in hours, from the machines' rows (`time_base.step_hours`)."""
    if len(X) < 2:
        return 1.0
    ts = time_ns(X[time_col])
    order = np.lexsort((ts, _codes(X[machine_col])))
    return time_base.step_hours(_codes(X[machine_col])[order], ts[order])
