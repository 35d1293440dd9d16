"""Estimators for the simulated fleet on `FleetFeatures` tables, scikit-learn contract.

Each takes the raw long panel in `fit(X, y)` / `predict*(X)` (y: `labels.make_targets`), and offers
`fit_table` / `*_table` so that `FleetModel` computes the features once for all of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from models import binning, part_evidence
from models.fleet_features import FleetFeatures
from models.labels import split_modes, within


def _machines(X: pd.DataFrame, features: FleetFeatures) -> np.ndarray:
    return X[features.machine_col].astype(str).to_numpy()


def _readable(x: np.ndarray) -> np.ndarray:
    """`x` with its columns that hold no value at all set to 0, for scikit-learn's boosting.

    Its binning fails on an all-NaN column (e.g. hours since an alarm code no machine has raised yet);
    a constant column is never split on, so the feature is ignored either way, also when it has values
    at prediction time.
    """
    empty = np.isnan(x).all(axis=0) if len(x) else np.zeros(x.shape[1], dtype=bool)
    if not empty.any():
        return x
    x = x.copy()
    x[:, empty] = 0.0
    return x


def _subsample(
    mask: np.ndarray, positive: np.ndarray, max_rows: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows to train on (all positives, negatives thinned to max_rows) and weights that undo the thinning."""
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(mask & positive)
    neg = np.flatnonzero(mask & ~positive)
    keep = max(1, max_rows - len(pos))
    rate = min(1.0, keep / max(1, len(neg)))
    if rate < 1.0:
        neg = np.sort(rng.choice(neg, size=keep, replace=False))
    rows = np.sort(np.concatenate([pos, neg]))
    weights = np.where(positive[rows], 1.0, 1.0 / rate)
    return rows, weights


def _thin_stably(
    mask: np.ndarray, positive: np.ndarray, kept: np.ndarray, max_rows: int, seed: int
) -> np.ndarray:
    """All positive and `kept` rows, and the other negatives thinned to max_rows by a per-row draw.

    Each row's draw depends on the seed and its position only, so adding `kept` rows (findings) leaves
    the other negatives' sample as it was: a retrained model differs by the findings, not by a new sample.
    """
    draw = np.random.default_rng(seed).random(len(mask))
    pos = np.flatnonzero(mask & (positive | kept))
    neg = np.flatnonzero(mask & ~positive & ~kept)
    neg = np.sort(
        neg[np.argsort(draw[neg], kind="stable")[: max(1, max_rows - int((mask & positive).sum()))]]
    )
    return np.sort(np.concatenate([pos, neg]))


def _calibrator(raw: np.ndarray, positive: np.ndarray) -> IsotonicRegression:
    return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, positive)


def _cross_calibrated(raw: np.ndarray, positive: np.ndarray, machines: np.ndarray) -> np.ndarray:
    """Each machine's raw scores calibrated by an isotonic fitted on the other machines' rows only.

    Fitted on the rows it maps, isotonic pools the top scores into blocks valued at their own share of
    positives, so those rows read near-pure positive by construction. Leaving out the machine (not only the
    row: a failure labels a machine's whole horizon before it) keeps its risk independent of its own labels.
    NaN for a machine alone in its fold: nothing else there to calibrate it on.
    """
    names, which = np.unique(machines, return_inverse=True)
    out = np.full(len(raw), np.nan)
    if len(names) < 2:
        return out
    for k in range(len(names)):
        own = which == k
        out[own] = _calibrator(raw[~own], positive[~own]).predict(raw[own])
    return out


class _TableEstimator(BaseEstimator):
    """Shared plumbing: fit the features on X (unless given fitted ones), then fit on the table."""

    features: FleetFeatures | None

    def _features_for(self, X: pd.DataFrame) -> FleetFeatures:
        return clone(self.features or FleetFeatures()).fit(X)

    def fit(self, X: pd.DataFrame, y: pd.DataFrame):  # noqa: ANN201 - returns self
        """Fit the features, then the model on every usable row."""
        with threadpool_limits(1):  # boosting oversubscribes small shared boxes; scale out with processes
            feats = self._features_for(X)
            return self.fit_table(feats.transform(X), y, feats, _machines(X, feats))

    def _table(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "features_")
        return self.features_.transform(X)


class FailureClassifier(ClassifierMixin, _TableEstimator):
    """Calibrated probability of a failure within `horizon_hours`, and the most likely failure mode.

    Gradient-boosted trees, cross-fitted by machine: `folds` models each trained on the other folds'
    machines and calibrated (isotonic) on their own fold; the risk is the mean of the calibrated models.
    Negative rows within the horizon before a technician's "no fault found" (`cleared_h`) are the model's
    own false alarms: they are never thinned; those within `finding_hours` before the finding (the alert
    episode: the rows that alerted until the technician came) weigh `no_fault_weight` in the boosting,
    the earlier ones 1 (`finding_hours=None`: every cleared row weighs `no_fault_weight`).
    With `part_evidence`, the boosting also reads each part's code and sensor together, learned from the
    training labels (`models.part_evidence`), and strong evidence of a part names it.
    """

    def __init__(
        self,
        *,
        features: FleetFeatures | None = None,
        horizon_hours: float = 168.0,
        folds: int = 3,
        max_rows: int = 150_000,
        max_iter: int = 150,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        no_fault_weight: float = 20.0,
        finding_hours: float | None = 48.0,
        part_evidence: bool = False,
        random_state: int = 0,
    ):
        self.features = features
        self.horizon_hours = horizon_hours
        self.folds = folds
        self.max_rows = max_rows
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.no_fault_weight = no_fault_weight
        self.finding_hours = finding_hours
        self.part_evidence = part_evidence
        self.random_state = random_state

    def _booster(self, seed: int) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=40,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=seed,
        )

    def fit_table(
        self, table: pd.DataFrame, y: pd.DataFrame, features: FleetFeatures, machines: np.ndarray
    ) -> FailureClassifier:
        """Fit on a precomputed feature table; keeps the out-of-fold risk of every usable row in `oof_`.

        A row's out-of-fold risk never reads its own machine's labels, as the served risk of a new machine:
        its fold's model did not train on the machine, its calibrator was fitted on the fold's other
        machines (`_cross_calibrated`).
        """
        binning.install()
        self.features_ = features
        self.columns_ = list(table.columns)
        positive, known = within(y, self.horizon_hours)
        usable = known & features.sufficient(table)
        cleared = y["cleared_h"].to_numpy(dtype=float) if "cleared_h" in y else np.full(len(y), np.nan)
        hard = usable & ~positive & (cleared <= self.horizon_hours)
        episode = hard & (
            cleared <= (self.horizon_hours if self.finding_hours is None else self.finding_hours)
        )
        modes = y["modes" if "modes" in y else "mode"].to_numpy(dtype=object)
        self.parts_ = {}
        if self.part_evidence:
            self.parts_ = part_evidence.learn(table, modes, positive, usable, features.sensors_)
        x, x_risk = table.to_numpy(dtype=float), self._risk_x(table)
        self.classes_ = np.array([False, True])
        self.models_, self.calibrators_ = [], []
        self.oof_ = np.full(len(table), np.nan)
        self.base_rate_ = float(positive[usable].mean()) if usable.any() else 0.0
        names = np.unique(machines[usable])
        fold_of = dict(
            zip(
                names,
                np.random.default_rng(self.random_state).permutation(len(names)) % self.folds,
                strict=True,
            )
        )
        row_fold = np.array([fold_of.get(m, -1) for m in machines])
        if positive[usable].sum() >= 2 and len(names) >= self.folds:
            for k in range(self.folds):
                # The thinning is not undone by weights on purpose: the isotonic step, fitted on all
                # held-out rows, restores the base rate.
                train = _thin_stably(
                    usable & (row_fold != k), positive, hard, self.max_rows, self.random_state + k
                )
                held = usable & (row_fold == k)
                weight = np.where(episode[train], self.no_fault_weight, 1.0) if episode.any() else None
                model = self._booster(self.random_state + k).fit(
                    _readable(x_risk[train]), positive[train], sample_weight=weight
                )
                raw = model.predict_proba(x_risk[held])[:, 1]
                # Served: calibrated on all the fold's held-out machines, none of which it will score.
                self.calibrators_.append(_calibrator(raw, positive[held]))
                self.oof_[held] = _cross_calibrated(raw, positive[held], machines[held])
                self.models_.append(model)
        self.reference_ = table.loc[usable & ~positive].median().reindex(self.columns_).to_numpy()
        self._fit_modes(x, y, positive & usable)
        return self

    def _risk_x(self, table: pd.DataFrame) -> np.ndarray:
        """The boosters' input: the feature table, and the part evidence column when parts were learned."""
        parts = getattr(self, "parts_", {})  # a model pickled before part evidence has none
        return (part_evidence.add(table, parts) if parts else table).to_numpy(dtype=float)

    def _fit_modes(self, x: np.ndarray, y: pd.DataFrame, rows: np.ndarray) -> None:
        # A class per mode, or per set of modes that failed at once (`labels.make_targets`' `modes`).
        modes = y["modes" if "modes" in y else "mode"].to_numpy(dtype=object)
        labels = np.unique(modes[rows].astype(str)) if rows.any() else np.array([], dtype=object)
        self.modes_ = np.array(sorted({m for label in labels for m in split_modes(label)}), dtype=object)
        self.mode_model_ = None
        self.single_class_ = labels[0] if len(labels) == 1 else None
        if len(labels) >= 2:
            picked, _ = _subsample(
                rows, np.zeros(len(rows), dtype=bool), self.max_rows // 3, self.random_state
            )
            clf = HistGradientBoostingClassifier(
                max_iter=max(10, self.max_iter // 2), max_leaf_nodes=15, random_state=self.random_state
            )
            self.mode_model_ = clf.fit(_readable(x[picked]), modes[picked].astype(str))

    def risk_table(self, table: pd.DataFrame) -> np.ndarray:
        """Probability of failure within the horizon for each row of a feature table."""
        check_is_fitted(self, "models_")
        if not self.models_:
            return np.full(len(table), self.base_rate_)
        x = self._risk_x(table.reindex(columns=self.columns_))
        risks = [
            iso.predict(m.predict_proba(x)[:, 1])
            for m, iso in zip(self.models_, self.calibrators_, strict=True)
        ]
        return np.mean(risks, axis=0)

    def mode_shares_table(self, table: pd.DataFrame) -> pd.DataFrame:
        """Per row and failure mode: the probability that this mode fails, given that a failure comes.

        Modes that failed together in training share their rows' probability, so a coming pair of
        failures gives both modes a high share; over the modes the shares sum to one or more. Where a
        learned part's evidence is strong (`part_evidence.name`), that part alone is named.
        """
        check_is_fitted(self, "models_")
        table = table.reindex(columns=self.columns_)
        shares = self._mode_model_shares(table)
        parts = getattr(self, "parts_", {})  # a model pickled before part evidence has none
        return part_evidence.name(shares, table, parts) if parts else shares

    def _mode_model_shares(self, table: pd.DataFrame) -> pd.DataFrame:
        modes = list(self.modes_)
        if self.mode_model_ is None:
            # One class seen in training (or a model pickled before pairs): every mode it names.
            names = split_modes(getattr(self, "single_class_", None) or (modes[0] if modes else ""))
            return pd.DataFrame({m: float(m in names) for m in modes}, index=table.index, columns=modes)
        proba = self.mode_model_.predict_proba(table.to_numpy(dtype=float))
        shares = np.zeros((len(table), len(modes)))
        for k, label in enumerate(self.mode_model_.classes_):
            for m in split_modes(label):
                shares[:, modes.index(m)] += proba[:, k]
        return pd.DataFrame(shares, index=table.index, columns=modes)

    def mode_table(self, table: pd.DataFrame) -> np.ndarray:
        """Most likely failure mode per row (None when no failure was seen in training)."""
        return self.mode_of(self.mode_shares_table(table))

    def mode_of(self, shares: pd.DataFrame) -> np.ndarray:
        """Most likely failure mode per row of `mode_shares_table` (None when no failure was seen)."""
        if not len(self.modes_):
            return np.full(len(shares), None, dtype=object)
        return np.asarray(self.modes_, dtype=object)[np.argmax(shares.to_numpy(), axis=1)]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Columns: no failure, failure within the horizon."""
        with threadpool_limits(1):
            risk = self.risk_table(self._table(X))
        return np.column_stack([1.0 - risk, risk])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """True where the risk is at least one half."""
        return self.predict_proba(X)[:, 1] >= 0.5

    def predict_mode(self, X: pd.DataFrame) -> np.ndarray:
        """The most likely failure mode per row."""
        return self.mode_table(self._table(X))


class FleetRUL(RegressorMixin, _TableEstimator):
    """Remaining useful life in hours (capped at `cap_hours`) with a conformal interval.

    Boosted trees (squared error on log1p hours) trained on rows leading to precursor failures (exact
    RUL) and on rows known healthy for longer than the cap (target = cap); rows before sudden failures or
    caught degradations are left out. The interval: conformal residual quantiles, per quantile band
    (`bins`) of the predicted RUL, of out-of-fold predictions (`calibration_folds` folds by machine) on
    the rows where a RUL is read: those within `calibrate_hours` (default: the cap) before a failure.
    """

    def __init__(
        self,
        *,
        features: FleetFeatures | None = None,
        cap_hours: float = 336.0,
        interval: float = 0.8,
        bins: int = 4,
        calibration_folds: int = 3,
        calibrate_hours: float | None = None,
        max_rows: int = 80_000,
        max_iter: int = 100,
        random_state: int = 0,
    ):
        self.features = features
        self.cap_hours = cap_hours
        self.interval = interval
        self.bins = bins
        self.calibration_folds = calibration_folds
        self.calibrate_hours = calibrate_hours
        self.max_rows = max_rows
        self.max_iter = max_iter
        self.random_state = random_state

    def _booster(self) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            max_iter=self.max_iter, max_leaf_nodes=15, random_state=self.random_state
        )

    def fit_table(
        self, table: pd.DataFrame, y: pd.DataFrame, features: FleetFeatures, machines: np.ndarray
    ) -> FleetRUL:
        """Fit on every usable row; calibrate the interval on out-of-fold predictions by machine."""
        self.features_ = features
        self.columns_ = list(table.columns)
        ttf = y["ttf_h"].to_numpy(dtype=float)
        exact = (ttf <= self.cap_hours) & y["precursor"].to_numpy() & ~y["caught"].to_numpy()
        healthy = (np.nan_to_num(ttf, nan=np.inf) > self.cap_hours) & (
            y["censor_h"].to_numpy() > self.cap_hours
        )
        usable = (exact | healthy) & features.sufficient(table)
        rows, _ = _subsample(usable, exact, self.max_rows, self.random_state)
        target = np.log1p(np.where(exact, ttf, self.cap_hours)[rows])
        x = table.to_numpy(dtype=float)[rows]
        self.model_ = None
        self.band_ = (0.0, 0.0)
        self.edges_, self.bands_ = None, None
        if len(rows) < 20 or not exact[rows].any():
            self.constant_ = float(np.expm1(np.median(target))) if len(rows) else self.cap_hours
            return self
        self.model_ = self._booster().fit(_readable(x), target)
        read_h = self.cap_hours if self.calibrate_hours is None else self.calibrate_hours
        calib = exact[rows] & (ttf[rows] <= read_h)
        names = np.unique(machines[rows])
        if len(names) < 2 or not calib.any():
            return self
        fold_of = dict(
            zip(names, np.random.default_rng(self.random_state).permutation(len(names)), strict=True)
        )
        fold = np.array([fold_of[m] for m in machines[rows]]) % min(self.calibration_folds, len(names))
        oof = np.full(len(rows), np.nan)
        for k in np.unique(fold):
            out = fold == k
            if (calib & out).any() and (~out).any():
                oof[calib & out] = (
                    self._booster().fit(_readable(x[~out]), target[~out]).predict(x[calib & out])
                )
        # Residuals of machines each model never saw, on rows where a RUL is read (healthy rows at the cap
        # are easy and would make the band too narrow), per band of predicted RUL.
        calib &= ~np.isnan(oof)
        resid = target[calib] - oof[calib]
        tail = (1 - self.interval) / 2
        if calib.sum() < 20:
            if calib.any():
                self.band_ = (float(np.quantile(resid, tail)), float(np.quantile(resid, 1 - tail)))
            return self
        pred = oof[calib]
        self.edges_ = np.quantile(pred, np.linspace(0, 1, self.bins + 1)[1:-1])
        which = np.searchsorted(self.edges_, pred)
        self.bands_ = np.array(
            [
                np.quantile(resid[which == b] if (which == b).sum() >= 10 else resid, [tail, 1 - tail])
                for b in range(self.bins)
            ]
        )
        self.band_ = (float(np.quantile(resid, tail)), float(np.quantile(resid, 1 - tail)))
        return self

    def interval_table(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RUL point, lower and upper bound in hours, per row."""
        check_is_fitted(self, "band_")
        if self.model_ is None:
            c = np.full(len(table), self.constant_)
            return c, c.copy(), c.copy()
        z = self.model_.predict(table.reindex(columns=self.columns_).to_numpy(dtype=float))
        if getattr(self, "bands_", None) is not None:
            band = self.bands_[np.searchsorted(self.edges_, z)]
        else:
            band = np.tile(np.asarray(self.band_, dtype=float), (len(z), 1))
        band = np.column_stack([np.minimum(band[:, 0], 0.0), np.maximum(band[:, 1], 0.0)])  # hold the point
        clip = (0.0, self.cap_hours)
        mid = np.clip(np.expm1(z), *clip)
        return mid, np.clip(np.expm1(z + band[:, 0]), *clip), np.clip(np.expm1(z + band[:, 1]), *clip)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """RUL in hours per row."""
        return self.interval_table(self._table(X))[0]

    def predict_interval(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper RUL bounds per row."""
        _, low, high = self.interval_table(self._table(X))
        return low, high


class AnomalyScorer(_TableEstimator):
    """Robust z-scores of each sensor's deviation from its own earlier days; no failure history needed.

    Score = largest |z| over sensors, squashed to [0, 1) as z / (z + 6). With labels at fit time it also
    learns an isotonic map from score to the probability of failure within the horizon (the fallback risk).
    """

    def __init__(
        self, *, features: FleetFeatures | None = None, horizon_hours: float = 168.0, scale: float = 6.0
    ):
        self.features = features
        self.horizon_hours = horizon_hours
        self.scale = scale

    def _kinds(self) -> list[str]:
        return [f"{s}__{k}" for s in self.features_.sensors_ for k in ("dev24", "trend")]

    def fit_table(
        self, table: pd.DataFrame, y: pd.DataFrame | None, features: FleetFeatures, machines: np.ndarray
    ) -> AnomalyScorer:
        """Learn the centre and spread of healthy rows, and the score-to-risk map when labels are given."""
        self.features_ = features
        usable = features.sufficient(table)
        healthy = usable
        if y is not None:
            positive, known = within(y, self.horizon_hours)
            healthy = usable & known & ~positive
        values = table.loc[healthy, self._kinds()] if healthy.any() else table[self._kinds()]
        self.center_ = values.median().fillna(0.0).to_numpy()
        mad = (values - self.center_).abs().median().fillna(0.0).to_numpy() * 1.4826
        self.spread_ = np.where(mad > 1e-9, mad, 1.0)
        self.risk_map_ = None
        if y is not None and (positive & known & usable).any():
            score = self.score_table(table)[usable & known]
            self.risk_map_ = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(
                score, positive[usable & known]
            )
        return self

    def fit(self, X: pd.DataFrame, y: pd.DataFrame | None = None) -> AnomalyScorer:
        """Fit the features, then the healthy reference (labels optional)."""
        feats = self._features_for(X)
        return self.fit_table(feats.transform(X), y, feats, _machines(X, feats))

    def zscores_table(self, table: pd.DataFrame) -> np.ndarray:
        """|z| per sensor (largest of its deviation and trend), NaN where the sensor has no data."""
        check_is_fitted(self, "center_")
        z = np.abs((table.reindex(columns=self._kinds()).to_numpy(dtype=float) - self.center_) / self.spread_)
        z = z.reshape(len(table), -1, 2)
        with np.errstate(invalid="ignore"):
            return np.where(np.isnan(z).all(axis=2), np.nan, np.nanmax(np.nan_to_num(z, nan=-1.0), axis=2))

    def score_table(self, table: pd.DataFrame) -> np.ndarray:
        """Anomaly score in [0, 1) per row."""
        z = self.zscores_table(table)
        zmax = np.nanmax(np.where(np.isnan(z), -np.inf, z), axis=1) if z.shape[1] else np.zeros(len(table))
        zmax = np.where(np.isfinite(zmax), zmax, 0.0)
        return zmax / (zmax + self.scale)

    def risk_table(self, table: pd.DataFrame) -> np.ndarray | None:
        """Fallback risk from the anomaly score, or None when no labels were available at fit time."""
        score = self.score_table(table)
        return None if self.risk_map_ is None else self.risk_map_.predict(score)

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        """Anomaly score in [0, 1) per row (higher is stranger)."""
        return self.score_table(self._table(X))
