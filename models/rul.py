"""Remaining-useful-life estimators on a long panel (unit, time, sensors), scikit-learn contract.

`predict` gives the RUL at every row from that unit's history so far; `predict_last` gives it at each
unit's latest row, with a split-conformal interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from models.features import WindowFeatures


def run_to_failure_rul(df: pd.DataFrame, *, unit_col: str = "unit", time_col: str = "cycle") -> np.ndarray:
    """Steps left until each unit's last row, for series that run until failure."""
    last = df.groupby(unit_col)[time_col].transform("max")
    return (last - df[time_col]).to_numpy(dtype=float)


def _last_positions(X: pd.DataFrame, unit_col: str, time_col: str) -> np.ndarray:
    """Row positions of each unit's latest row, ordered by unit."""
    order = X[[unit_col, time_col]].reset_index(drop=True).sort_values([unit_col, time_col], kind="mergesort")
    return order.groupby(unit_col, sort=False).tail(1).index.to_numpy()


class MeanRUL(RegressorMixin, BaseEstimator):
    """Naive baseline: the mean capped RUL of the training rows, whatever the sensors say."""

    def __init__(self, *, cap: float = 125.0, unit_col: str = "unit", time_col: str = "cycle"):
        self.cap = cap
        self.unit_col = unit_col
        self.time_col = time_col

    def fit(self, X: pd.DataFrame, y: np.ndarray | None = None) -> MeanRUL:
        """Learn the constant."""
        life = run_to_failure_rul(X, unit_col=self.unit_col, time_col=self.time_col) if y is None else y
        self.mean_ = float(np.mean(np.minimum(np.asarray(life, dtype=float), self.cap)))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The constant for every row."""
        check_is_fitted(self, "mean_")
        return np.full(len(X), self.mean_)

    def predict_last(self, X: pd.DataFrame) -> pd.DataFrame:
        """The constant at each unit's latest row."""
        check_is_fitted(self, "mean_")
        units = np.sort(X[self.unit_col].unique())
        return pd.DataFrame({"rul": self.mean_}, index=pd.Index(units, name=self.unit_col))


class RULRegressor(RegressorMixin, BaseEstimator):
    """Gradient-boosted trees on window features against the piecewise-linear target min(RUL, cap).

    `n_models` boosted models on random feature subsets are averaged (seeds random_state, +1, ...).
    With `interval` (e.g. 0.8) it also learns a split-conformal interval: out-of-fold residuals from
    `calibration_folds` unit-wise folds, with separate residual quantiles per band of predicted RUL.
    `n_threads` caps the OpenMP threads of the boosting (None: all cores); 1 is steadier on a busy host.
    """

    def __init__(
        self,
        *,
        features: WindowFeatures | None = None,
        cap: float = 125.0,
        max_iter: int = 300,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        max_features: float = 0.5,
        n_models: int = 1,
        interval: float | None = 0.8,
        calibration_folds: int = 3,
        interval_bands: int = 5,
        n_threads: int | None = None,
        random_state: int = 0,
    ):
        self.features = features
        self.cap = cap
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_features = max_features
        self.n_models = n_models
        self.interval = interval
        self.calibration_folds = calibration_folds
        self.interval_bands = interval_bands
        self.n_threads = n_threads
        self.random_state = random_state

    def _booster(self, seed: int) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            max_features=self.max_features,
            early_stopping=False,
            random_state=seed,
        )

    def fit(self, X: pd.DataFrame, y: np.ndarray | None = None) -> RULRegressor:
        """Fit on every row; y is the RUL per row (None: the series run until failure)."""
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            return self._fit(X, y)

    def _fit(self, X: pd.DataFrame, y: np.ndarray | None) -> RULRegressor:
        feats = clone(self.features) if self.features is not None else WindowFeatures(health_cap=self.cap)
        life = run_to_failure_rul(X, unit_col=feats.unit_col, time_col=feats.time_col) if y is None else y
        target = np.minimum(np.asarray(life, dtype=float), self.cap)
        table = feats.fit_transform(X, target)
        self.features_ = feats
        self.feature_names_ = list(table.columns)
        self.models_ = [self._booster(self.random_state + i).fit(table, target) for i in range(self.n_models)]
        self.interval_edges_, self.interval_offsets_ = None, None
        if self.interval is not None:
            self._calibrate(X, target)
        return self

    def _calibrate(self, X: pd.DataFrame, target: np.ndarray) -> None:
        """Residual quantiles per band of predicted RUL, from models that never saw the unit."""
        units = X[self.features_.unit_col].to_numpy()
        shuffled = np.random.default_rng(self.random_state).permutation(np.unique(units))
        oof = np.empty(len(X))
        for held in np.array_split(shuffled, self.calibration_folds):
            out = np.isin(units, held)
            sub = clone(self).set_params(interval=None, n_models=1)
            oof[out] = sub.fit(X[~out], target[~out]).predict(X[out])
        inner = np.linspace(0, 1, self.interval_bands + 1)[1:-1]
        self.interval_edges_ = np.unique(np.quantile(oof, inner))
        band = np.searchsorted(self.interval_edges_, oof)
        tail = (1.0 - self.interval) / 2.0
        resid = target - oof
        self.interval_offsets_ = np.array(
            [np.quantile(resid[band == b], [tail, 1.0 - tail]) for b in range(len(self.interval_edges_) + 1)]
        )

    def _table(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "models_")
        return self.features_.transform(X)

    def _point(self, table: pd.DataFrame) -> np.ndarray:
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            pred = np.mean([m.predict(table) for m in self.models_], axis=0)
        return np.clip(pred, 0.0, self.cap)

    def _bounds(self, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.interval_offsets_ is None:
            return np.full(len(point), np.nan), np.full(len(point), np.nan)
        off = self.interval_offsets_[np.searchsorted(self.interval_edges_, point)]
        # Widened to hold the point itself: a band's residuals can all share one sign.
        lower = np.clip(point + np.minimum(off[:, 0], 0.0), 0.0, self.cap)
        return lower, np.clip(point + np.maximum(off[:, 1], 0.0), 0.0, self.cap)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """RUL at every row, from that unit's rows up to it, within [0, cap]."""
        return self._point(self._table(X))

    def predict_interval(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bound of the conformal interval per row (NaN when interval is None)."""
        return self._bounds(self.predict(X))

    def predict_last(self, X: pd.DataFrame) -> pd.DataFrame:
        """RUL and interval at each unit's latest row, indexed by unit in sorted order."""
        table = self._table(X)
        pos = _last_positions(X, self.features_.unit_col, self.features_.time_col)
        point = self._point(table.iloc[pos])
        lower, upper = self._bounds(point)
        index = pd.Index(X[self.features_.unit_col].to_numpy()[pos], name=self.features_.unit_col)
        return pd.DataFrame({"rul": point, "lower": lower, "upper": upper}, index=index)
