"""Sensor-trend forecasts: when will a key sensor's deviation cross its failure limit, with an interval.

Two paths with one result shape: a vectorised Holt linear trend (fixed smoothing, every machine at once,
used when scoring thousands of machines) and statsmodels' Holt/ETS fitted per machine and sensor (used
where affordable, e.g. for the machines at risk). A series too short, flat, or whose fit fails falls back
and says so in `method`.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from models.fleet_features import FleetFeatures

log = logging.getLogger(__name__)
Z80 = 1.2816
Z_SLOPE = 4.0  # a trend counts when its least-squares slope lies this many standard errors from flat


def slope_significant(series: np.ndarray, direction: np.ndarray | float, overlap: int = 1) -> np.ndarray:
    """Per row of a 2-D array (NaN skipped): whether the least-squares slope over the whole window leans
    toward `direction` (+1 rising, -1 falling) by more than `Z_SLOPE` standard errors.

    `overlap` is how many consecutive points share their data (a rolling mean over that many steps): the
    residuals are then that much less independent, and the standard error grows by its square root. Over
    a window of whole days (48 h) a healthy machine's daily rhythm does not tilt the line and its noise
    does not pass the test; a climb sustained over the window does."""
    ok = ~np.isnan(series)
    n = ok.sum(axis=1)
    t = np.broadcast_to(np.arange(series.shape[1], dtype=float), series.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_mean = np.where(ok, t, 0.0).sum(axis=1) / n
        y_mean = np.where(ok, series, 0.0).sum(axis=1) / n
        dt = np.where(ok, t - t_mean[:, None], 0.0)
        dy = np.where(ok, series - y_mean[:, None], 0.0)
        sxx = (dt**2).sum(axis=1)
        slope = (dt * dy).sum(axis=1) / sxx
        resid = np.where(ok, dy - slope[:, None] * dt, 0.0)
        se = np.sqrt((resid**2).sum(axis=1) / (n - 2) / sxx * max(overlap, 1))
        lean = slope * direction
        return (n > 2) & (lean > Z_SLOPE * np.maximum(se, 1e-12))


def holt_vectorised(
    series: np.ndarray, alpha: float, beta: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Holt's linear trend over rows of a 2-D array (NaN skipped): final level, trend, residual sd."""
    n, t = series.shape
    level = np.where(np.isnan(series[:, 0]), 0.0, series[:, 0])
    trend = np.zeros(n)
    sq, cnt = np.zeros(n), np.zeros(n)
    for j in range(1, t):
        x = series[:, j]
        ok = ~np.isnan(x)
        pred = level + trend
        err = np.where(ok, x - pred, 0.0)
        sq += err**2
        cnt += ok
        new_level = np.where(ok, pred + alpha * err, pred)
        trend = np.where(ok, beta * (new_level - level) + (1 - beta) * trend, trend)
        level = new_level
    sd = np.sqrt(np.divide(sq, cnt, out=np.zeros(n), where=cnt > 0))
    return level, trend, sd


def crossing(
    level: np.ndarray,
    trend: np.ndarray,
    sd: np.ndarray,
    limit: float,
    max_steps: float,
    direction: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps until level + trend·h reaches limit (NaN if moving away or too far), and an 80 % band.

    `direction` is +1 when rising to the limit is bad and -1 when falling is; by default the sign of the
    limit (a limit on a deviation from the usual level)."""
    sign = np.sign(limit) if direction is None else direction
    gap = (limit - level) * sign
    speed = trend * sign
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(gap <= 0, 0.0, np.where(speed > 0, gap / speed, np.nan))
        low = np.where(gap - Z80 * sd <= 0, 0.0, np.where(speed > 0, (gap - Z80 * sd) / speed, np.nan))
        high = np.where(speed > 0, (gap + Z80 * sd) / speed, np.nan)
    eta = np.where(eta <= max_steps, eta, np.nan)
    low = np.clip(np.nan_to_num(low, nan=0.0), 0.0, np.nan_to_num(eta, nan=0.0))
    high = np.minimum(np.fmax(np.nan_to_num(high, nan=max_steps), eta), max_steps)
    return eta, np.where(np.isnan(eta), np.nan, low), np.where(np.isnan(eta), np.nan, high)


class TrendForecaster(BaseEstimator):
    """Expected time each machine's key sensor crosses its limit (hours from its last row), with a band.

    The learned limit of a sensor is the median 6-hour deviation seen just before precursor failures in
    training (only sensors that move clearly); without failure history, `fallback_sigmas` robust sd of
    healthy rows. Where the machine type gives an OEM limit for a sensor (`oem_limits` of
    `predict_series`), that limit replaces the learned one and the forecast runs on the readings. A
    crossing ahead counts only when the window's slope is significant (`slope_significant`).
    """

    def __init__(
        self,
        *,
        features: FleetFeatures | None = None,
        history_hours: float = 48.0,
        alpha: float = 0.3,
        beta: float = 0.1,
        max_hours: float = 720.0,
        min_points: int = 12,
        method: str = "vectorised",
        fallback_sigmas: float = 8.0,
    ):
        self.features = features
        self.history_hours = history_hours
        self.alpha = alpha
        self.beta = beta
        self.max_hours = max_hours
        self.min_points = min_points
        self.method = method
        self.fallback_sigmas = fallback_sigmas

    def fit(self, X: pd.DataFrame, y: pd.DataFrame | None = None) -> TrendForecaster:
        """Fit the features and learn one limit per sensor."""
        feats = clone(self.features or FleetFeatures()).fit(X)
        return self.fit_table(feats.transform(X), y, feats)

    def fit_table(
        self, table: pd.DataFrame, y: pd.DataFrame | None, features: FleetFeatures
    ) -> TrendForecaster:
        """Learn the limits from a precomputed feature table."""
        self.features_ = features
        cols = [f"{s}__dev6" for s in features.sensors_]
        values = table[cols].to_numpy(dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a sensor with no deviation yet (short history)
            centre = np.nanmedian(values, axis=0) if len(values) else np.zeros(len(cols))
            spread = (
                np.nanmedian(np.abs(values - centre), axis=0) * 1.4826 if len(values) else np.ones(len(cols))
            )
        spread = np.where(np.isfinite(spread) & (spread > 1e-6), spread, 1e-2)
        self.limits_ = {}
        if y is not None:
            ttf = y["ttf_h"].to_numpy(dtype=float)
            near = (ttf <= 6.0) & y["precursor"].to_numpy() & ~y["caught"].to_numpy()
            if near.sum() >= 3:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a sensor without data near failures
                    at_failure = np.nanmedian(values[near], axis=0)
                for s, v, sd in zip(features.sensors_, at_failure, spread, strict=True):
                    if np.isfinite(v) and abs(v) > 4 * sd:
                        self.limits_[s] = float(v)
        if not self.limits_:
            self.limits_ = {
                s: float(self.fallback_sigmas * sd) for s, sd in zip(features.sensors_, spread, strict=True)
            }
        return self

    def predict_series(
        self,
        machines: np.ndarray,
        series: np.ndarray,
        *,
        method: str | None = None,
        sensors: list[str] | None = None,
        raw: np.ndarray | None = None,
        oem_limits: dict[str, tuple[float, str]] | None = None,
    ) -> pd.DataFrame:
        """Per machine: eta_h, eta_low_h, eta_high_h (hours from its last row), eta_sensor and method,
        from each machine's recent 6-hour deviations (`FleetFeatures.recent`); `sensors` limits the
        forecast to some of the sensors that have a limit. `oem_limits` (sensor: (limit, 'high' or 'low'
        is bad), in the sensor's unit) beat the learned limits; they need `raw`, the recent readings
        (`FleetFeatures.recent(..., raw=True)`)."""
        check_is_fitted(self, "limits_")
        method = method or self.method
        step = self.features_.step_hours_
        known = self.features_.sensors_
        oem = {s: v for s, v in (oem_limits or {}).items() if s in known} if raw is not None else {}
        best = None
        for sensor in dict.fromkeys([*self.limits_, *oem]):
            if sensors is not None and sensor not in sensors:
                continue
            if sensor in oem:
                limit, bad = oem[sensor]
                values, direction = raw[known.index(sensor)], 1.0 if bad == "high" else -1.0
            else:
                limit, direction = self.limits_[sensor], None
                values = series[known.index(sensor)]
            enough = (~np.isnan(values)).sum(axis=1) >= self.min_points
            level, trend, sd = holt_vectorised(values, self.alpha, self.beta)
            how = np.where(enough, "holt_vectorised", "too_short").astype(object)
            if method == "statsmodels":
                level, trend, sd, how = _statsmodels_holt(values, enough, level, trend, sd, how)
            eta, low, high = crossing(level, trend, sd, limit, self.max_hours / step, direction)
            toward = np.sign(limit) if direction is None else direction
            overlap = self.features_.rows(self.features_.short_hours)
            flat = ~enough | ((eta > 0) & ~slope_significant(values, toward, overlap))
            eta[flat], low[flat], high[flat] = np.nan, np.nan, np.nan
            frame = pd.DataFrame(
                {"eta_h": eta * step, "eta_low_h": low * step, "eta_high_h": high * step, "method": how},
                index=pd.Index(machines, name="machine"),
            )
            frame["eta_sensor"] = np.where(np.isnan(eta), None, sensor)
            if best is None:
                best = frame
            else:
                sooner = frame["eta_h"].to_numpy() < np.nan_to_num(best["eta_h"].to_numpy(), nan=np.inf)
                best = best.copy()
                best.loc[sooner] = frame.loc[sooner]
        if best is None:
            best = pd.DataFrame(
                {
                    "eta_h": np.nan,
                    "eta_low_h": np.nan,
                    "eta_high_h": np.nan,
                    "method": "no_limit",
                    "eta_sensor": None,
                },
                index=pd.Index(machines, name="machine"),
            )
        return best

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per machine, ordered by machine: crossing time of the earliest sensor, its band and the method."""
        check_is_fitted(self, "limits_")
        prep = self.features_.prepare(X)
        return self.predict_series(prep.machines, self.features_.recent(prep, self.history_hours))


def _statsmodels_holt(series, enough, level, trend, sd, how):  # noqa: ANN001, ANN202
    """Replace vectorised estimates by statsmodels Holt fits where the series allows; fallbacks recorded."""
    from statsmodels.tsa.holtwinters import Holt

    level, trend, sd, how = level.copy(), trend.copy(), sd.copy(), how.copy()
    for i in np.flatnonzero(enough):
        y = pd.Series(series[i]).interpolate(limit_direction="both").to_numpy()
        if np.ptp(y) < 1e-9:
            how[i] = "fallback_flat"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = Holt(y, initialization_method="estimated").fit()
            level[i], trend[i] = float(fit.level[-1]), float(fit.trend[-1])
            sd[i] = float(np.std(fit.resid))
            how[i] = "statsmodels_holt"
        except Exception as exc:  # noqa: BLE001 - any fit failure falls back to the vectorised estimate
            log.info("statsmodels Holt failed (%s); vectorised Holt kept", exc)
            how[i] = "fallback_holt_vectorised"
    return level, trend, sd, how
