"""One machine type's model bundle: features once, then risk, mode, RUL, trend ETA, anomaly, evidence.

This is the artifact the registry stores and the scorer runs. `predict_frame(panel)` answers per machine
at its latest row; `risk_rows(panel)` answers at every row (backtests). Both go through the same features.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from fleet import display
from fleet.machine_types import SensorSpec
from models import explain, limits, modes
from models.fleet_estimators import AnomalyScorer, FailureClassifier, FleetRUL
from models.fleet_features import FleetFeatures, Prepared
from models.labels import within
from models.statuses import FALLBACK_STATUS
from models.trend import TrendForecaster

log = logging.getLogger(__name__)

OK, INSUFFICIENT, FALLBACK = "ok", "insufficient_data", FALLBACK_STATUS
SILENT = "; no readings in the last day of "  # ends an explanation: the model's sensors gone quiet
SCORE_COLUMNS = [
    "machine",
    "ts",
    "status",
    "risk",
    "alert",
    "failure_mode",
    "likely_modes",
    "rul_hours",
    "rul_low",
    "rul_high",
    "eta_h",
    "eta_low_h",
    "eta_high_h",
    "eta_sensor",
    "trend_method",
    "anomaly_score",
    "contributions",
    "explanation",
]


class FleetModel(BaseEstimator):
    """All fleet models of one machine type, fitted on one feature table.

    `threshold_` (alert threshold on the risk) is 0.5 after `fit`; training sets it from out-of-fold
    alerts on the training period (`models.training.choose_threshold`). With `statsmodels_top` > 0 the
    trend of the riskiest machines of a batch is refitted with statsmodels Holt; the rest use the
    vectorised Holt. A reading beyond an OEM alarm limit its type gives (`use_types`) is a risk of
    `limits.ALARM_RISK` whatever the classifier says, in `risk_rows` as in `predict_frame`. With
    `part_evidence` the classifier reads each part's own code and sensor together (`models.part_evidence`).
    """

    def __init__(
        self,
        *,
        features: FleetFeatures | None = None,
        horizon_hours: float = 168.0,
        rul_cap_hours: float = 336.0,
        folds: int = 3,
        max_rows: int = 150_000,
        max_iter: int = 150,
        no_fault_weight: float = 20.0,
        finding_hours: float | None = 48.0,
        part_evidence: bool = False,
        statsmodels_top: int = 5,
        n_threads: int | None = 1,
        random_state: int = 0,
    ):
        self.features = features
        self.horizon_hours = horizon_hours
        self.rul_cap_hours = rul_cap_hours
        self.folds = folds
        self.max_rows = max_rows
        self.max_iter = max_iter
        self.no_fault_weight = no_fault_weight
        self.finding_hours = finding_hours
        self.part_evidence = part_evidence
        self.statsmodels_top = statsmodels_top
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> FleetModel:
        """Fit features and every model on a panel of one type with its targets (`labels.make_targets`)."""
        # One OpenMP thread per process by default: boosting on a shared 2-core box is faster without
        # oversubscription; scale out with processes (one per machine type or shard).
        with threadpool_limits(self.n_threads):
            return self._fit(X, y)

    def _fit(self, X: pd.DataFrame, y: pd.DataFrame) -> FleetModel:
        self.features_ = clone(self.features or FleetFeatures()).fit(X)
        table = self.features_.transform(X)
        machines = X[self.features_.machine_col].astype(str).to_numpy()
        positive, known = within(y, self.horizon_hours)
        self.classifier_ = None
        if (positive & known & self.features_.sufficient(table)).sum() >= 2:
            self.classifier_ = FailureClassifier(
                horizon_hours=self.horizon_hours,
                folds=self.folds,
                max_rows=self.max_rows,
                max_iter=self.max_iter,
                no_fault_weight=self.no_fault_weight,
                finding_hours=self.finding_hours,
                part_evidence=self.part_evidence,
                random_state=self.random_state,
            ).fit_table(table, y, self.features_, machines)
        rul = FleetRUL(
            cap_hours=self.rul_cap_hours,
            calibrate_hours=self.horizon_hours,  # the band is read on alerts, within the horizon of a failure
            max_iter=max(10, self.max_iter // 2),
            random_state=self.random_state,
        )
        self.rul_ = rul.fit_table(table, y, self.features_, machines)
        self.trend_ = TrendForecaster().fit_table(table, y, self.features_)
        self.anomaly_ = AnomalyScorer(horizon_hours=self.horizon_hours).fit_table(
            table, y, self.features_, machines
        )
        self.threshold_ = 0.5
        return self

    def has_failure_model(self) -> bool:
        """Whether cross-fitted failure classifiers exist: failures and known-healthy rows on enough machines.

        Without them the risk is the anomaly fallback (NaN without labels) or the training base rate.
        """
        check_is_fitted(self, "features_")
        return self.classifier_ is not None and bool(self.classifier_.models_)

    def use_types(self, sensors: Mapping[str, SensorSpec]) -> FleetModel:
        """Take sensor words and OEM limits from the machine type (`fleet.machine_types.model_specs`):
        explanations use the display names, the trend forecast the OEM limit where one is given."""
        self.sensor_specs_ = dict(sensors)
        return self

    def sensors_read(self) -> list[str]:
        """The model's sensors and those the type gives limits for now (one renamed or added since fit)."""
        check_is_fitted(self, "features_")
        return list(dict.fromkeys([*self.features_.sensors_, *self._limits()]))

    def _limits(self) -> dict[str, dict]:
        """The OEM limits the machine type gives now (`use_types`, at load), else those given at fit."""
        specs = getattr(self, "sensor_specs_", None)
        return getattr(self, "limits_", {}) if specs is None else limits.limits_of(specs)

    def _beyond(
        self, X: pd.DataFrame, found: dict[str, dict], levels: tuple = limits.ALARM
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`limits.beyond` on `X` by this model's machine and time columns: per row."""
        feats = self.features_
        return limits.beyond(
            X, found, levels, machine=feats.machine_col, ts=feats.time_col, hold_s=self._hold_s()
        )

    def _beyond_latest(
        self,
        X: pd.DataFrame,
        prep: Prepared,
        found: dict[str, dict],
        levels: tuple = limits.ALARM,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`limits.beyond_latest` on `X` sorted as `prep` sorts it: per machine (`prep.machines`)."""
        return limits.beyond_latest(
            X,
            found,
            levels,
            order=prep.order,
            last=prep.last,
            ts=self.features_.time_col,
            hold_s=self._hold_s(),
        )

    def _last_read(
        self, X: pd.DataFrame, prep: Prepared, sensor: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`limits.last_read` of `sensor` on `X` sorted as `prep` sorts it: per machine (`prep.machines`)."""
        return limits.last_read(
            X, sensor, order=prep.order, last=prep.last, ts=self.features_.time_col, hold_s=self._hold_s()
        )

    def _hold_s(self) -> float:
        """How long a sensor's last reading stands in the limit check at least: the features' hold at the
        type's step (a machine slower than the step holds for its own interval, as `limits.beyond` says)."""
        return limits.hold_seconds(self.features_.step_hours_)

    def _latest_readings(self, X: pd.DataFrame, prep: Prepared, which: np.ndarray) -> pd.DataFrame:
        """The latest reading of each sensor read (the value the limit check carried) of the machines
        `which` picks from `prep.machines`, indexed by machine; only their rows are read."""
        first = np.r_[0, prep.last[:-1] + 1][which]
        n = prep.last[which] - first + 1
        pos = np.arange(n.sum()) + np.repeat(first - np.cumsum(n) + n, n)
        cols = [c for c in [self.features_.machine_col, *self.sensors_read()] if c in X.columns]
        by_time = X[cols].iloc[prep.order[pos]]  # by machine and time
        return by_time.groupby(self.features_.machine_col, sort=True).last().reindex(prep.machines[which])

    def _oem_limits(self) -> dict[str, tuple[float, str]]:
        specs = getattr(self, "sensor_specs_", {})  # a model pickled before types were data has none
        return {
            s: (spec.oem_limit, spec.bad or "high") for s, spec in specs.items() if spec.oem_limit is not None
        }

    def risk_rows(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Risk at every row (NaN where data are insufficient), and the anomaly score."""
        check_is_fitted(self, "features_")
        with threadpool_limits(self.n_threads):
            return self._risk_rows(X)

    def _risk_rows(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        table, ok, anomaly = self._table_rows(X)
        if self.classifier_ is not None:
            risk = self.classifier_.risk_table(table)
        else:
            fallback = self.anomaly_.risk_table(table)
            risk = np.full(len(table), np.nan) if fallback is None else fallback
        alarm, _, _ = self._beyond(X, self._limits())
        risk = np.where(alarm > 0, alarm, np.where(ok, risk, np.nan))
        return risk, anomaly

    def _table_rows(self, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Features at every row, whether they suffice, and the anomaly score (NaN where they do not)."""
        table = self.features_.transform(X)
        ok = self.features_.sufficient(table)
        return table, ok, np.where(ok, self.anomaly_.score_table(table), np.nan)

    def predict_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """One row per machine (ordered by machine) at its latest row: status, risk and the evidence."""
        check_is_fitted(self, "features_")
        with threadpool_limits(self.n_threads):
            return self._predict_frame(X)

    def _predict_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        feats = self.features_
        prep = feats.prepare(X)
        table = feats.transform_last(X, prep)
        last = prep.order[prep.last]
        out = pd.DataFrame({"machine": prep.machines, "ts": X[feats.time_col].iloc[last].to_numpy()})
        ok = feats.sufficient(table)
        out["anomaly_score"] = self.anomaly_.score_table(table)
        risk, status, contrib = self._risk(table)
        out["status"] = np.where(ok, status, INSUFFICIENT)
        out["risk"] = np.where(ok, risk, np.nan)
        out["alert"] = out["risk"].to_numpy() >= self.threshold_
        out["failure_mode"], named = self._modes(table)
        out["likely_modes"] = None if named is None else pd.Series(named, index=out.index, dtype=object)
        rul, low, high = self.rul_.interval_table(table)
        out["rul_hours"], out["rul_low"], out["rul_high"] = rul, low, high
        trend = self._trend(prep, out["risk"].to_numpy())
        for col in ("eta_h", "eta_low_h", "eta_high_h", "eta_sensor"):
            out[col] = trend[col].to_numpy()
        out["trend_method"] = trend["method"].to_numpy()
        words = {s: spec.words for s, spec in getattr(self, "sensor_specs_", {}).items()}
        trend_now = explain.reading_trend(feats, prep, prep.grid[prep.last])
        records, texts = explain.explain_rows(feats.sensors_, table, contrib, trend=trend_now, words=words)
        out["contributions"] = records
        out["explanation"] = [
            _sentence(s, r, a, _with_modes(t, m, likely), h, c, feats.min_history_hours)
            for s, r, a, t, m, likely, h, c in zip(
                out["status"],
                out["risk"],
                out["anomaly_score"],
                texts,
                out["failure_mode"],
                out["likely_modes"],
                table["history_h"],
                table["coverage"],
                strict=True,
            )
        ]
        blank = ~ok
        for col in (
            "risk",
            "rul_hours",
            "rul_low",
            "rul_high",
            "eta_h",
            "eta_low_h",
            "eta_high_h",
            "anomaly_score",
        ):
            out.loc[blank, col] = np.nan
        out.loc[blank, ["failure_mode", "eta_sensor"]] = None
        for col in ("contributions", "likely_modes"):
            out.loc[blank, col] = pd.Series([None] * int(blank.sum()), index=out.index[blank], dtype=object)
        out.loc[blank, "alert"] = False
        if ok.any():  # an empty list added to an empty text column is a float array to pandas
            out.loc[ok, "explanation"] += _silence(feats.sensors_, table.loc[ok], words)
        return self._with_limits(out[SCORE_COLUMNS], X, prep)

    def _with_limits(self, out: pd.DataFrame, X: pd.DataFrame, prep: Prepared) -> pd.DataFrame:
        """Machines whose latest row is beyond an OEM alarm limit alert at `limits.ALARM_RISK` whatever the
        model says; the explanation says so first, then the model's."""
        found = self._limits()
        risk, sensor, held = self._beyond_latest(X, prep, found)
        hit = risk > 0
        if not hit.any():
            return out
        rows = self._latest_readings(X, prep, hit)
        specs = getattr(self, "sensor_specs_", {})
        said = [
            f"{limits.phrase(s, rows.at[m, s], 'alarm', found[s]['alarm'], specs, h)}; the model says {e}"
            for m, s, h, e in zip(
                prep.machines[hit], sensor[hit], held[hit], out.loc[hit, "explanation"], strict=True
            )
        ]
        out.loc[hit, "explanation"] = said
        out.loc[hit, "risk"] = risk[hit]
        out.loc[hit, ["status", "alert"]] = [OK, True]
        # The model's own mode where it names one: its alert goes on, no second one for the same machine.
        named = out.loc[hit, "failure_mode"]
        out.loc[hit, "failure_mode"] = named.where(
            named.notna(), "limit:" + pd.Series(sensor[hit], named.index)
        )
        return out

    def _modes(self, table: pd.DataFrame) -> tuple[np.ndarray | None, list[list[dict]] | None]:
        """The most likely failure mode per row, and every mode `modes.likely` names with its share."""
        if self.classifier_ is None:
            return None, None
        shares = self.classifier_.mode_shares_table(table)
        return self.classifier_.mode_of(shares), modes.likely_modes(shares)

    def _risk(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Risk, status and contributions; the anomaly fallback when the classifier is absent or fails."""
        n = len(table)
        if self.classifier_ is not None:
            try:
                risk = self.classifier_.risk_table(table)
                if np.all(np.isfinite(risk)):
                    return (
                        risk,
                        np.full(n, OK, dtype=object),
                        explain.contributions(self.classifier_, table, risk),
                    )
            except Exception as exc:  # noqa: BLE001 - a broken model must not stop the fleet's scoring
                log.warning("classifier failed on %d machines (%s); anomaly fallback used", n, exc)
        fallback = self.anomaly_.risk_table(table)
        risk = np.full(n, np.nan) if fallback is None else fallback
        z = np.nan_to_num(self.anomaly_.zscores_table(table))
        share = z / np.maximum(z.sum(axis=1, keepdims=True), 1e-9)
        contrib = share * np.nan_to_num(risk)[:, None]
        return risk, np.full(n, FALLBACK, dtype=object), contrib

    def _trend(self, prep: Prepared, risk: np.ndarray) -> pd.DataFrame:
        """Vectorised Holt for all machines; statsmodels Holt refits the riskiest ones' earliest sensor."""
        hours = self.trend_.history_hours
        series = self.features_.recent(prep, hours)
        oem = self._oem_limits()
        raw = self.features_.recent(prep, hours, raw=True) if oem else None
        trend = self.trend_.predict_series(prep.machines, series, raw=raw, oem_limits=oem)
        if self.statsmodels_top > 0 and np.any(risk >= self.threshold_):
            top = np.argsort(-np.nan_to_num(risk, nan=-1.0))[: self.statsmodels_top]
            top = top[risk[top] >= self.threshold_]
            sensor_of = trend["eta_sensor"].to_numpy()[top]
            trend = trend.copy()
            for sensor in pd.unique(sensor_of[pd.notna(sensor_of)]):
                rows = top[sensor_of == sensor]
                refit = self.trend_.predict_series(
                    prep.machines[rows],
                    series[:, rows],
                    method="statsmodels",
                    sensors=[sensor],
                    raw=None if raw is None else raw[:, rows],
                    oem_limits=oem,
                )
                trend.loc[refit.index] = refit
        return trend


def _silence(sensors: list[str], table: pd.DataFrame, words: Mapping[str, str]) -> list[str]:
    """Per row, `SILENT` and the model's sensors without a reading in the last day (else ""): a sensor
    the machine stopped sending (a types-file change, new firmware) leaves the risk blind to it."""
    if not sensors:
        return [""] * len(table)
    missing = table[[f"{s}__level" for s in sensors]].isna().to_numpy()
    names = np.array([words.get(s) or s.replace("_", " ") for s in sensors], dtype=object)
    return [f"{SILENT}{', '.join(names[row])}" if row.any() else "" for row in missing]


def _with_modes(evidence: str, primary: str | None, likely: list[dict] | None) -> str:
    also = modes.words(likely, primary)
    return f"{evidence}; {also}" if evidence and also else evidence or also


def _sentence(
    status: str, risk: float, score: float, evidence: str, history_h: float, coverage: float, needed_h: float
) -> str:
    if status == INSUFFICIENT and history_h < needed_h:
        return f"insufficient data: {history_h:.0f} h of readings, {needed_h:.0f} h needed"
    if status == INSUFFICIENT:
        return f"insufficient data: {coverage:.0%} of the last day's readings present (stopped or silent)"
    head = f"risk {display.percent(risk)}" if np.isfinite(risk) else "no risk estimate"
    if status == FALLBACK:  # the risk is learned from the anomaly score alone: the score is said first
        head += f" {display.READINGS_ALONE}"
        evidence = "; ".join(filter(None, [f"readings {display.unusual(score)}", evidence]))
    return f"{head}: {evidence}" if evidence else head
