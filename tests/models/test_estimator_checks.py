"""Generic checks over every fleet estimator: the scikit-learn contract, determinism, pickling, robustness."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from models.fleet_estimators import AnomalyScorer, FailureClassifier, FleetRUL
from models.fleet_features import FleetFeatures
from models.fleet_model import FleetModel
from models.trend import TrendForecaster
from tests.models.fleet_support import FAST, pump_data

DROPPED = "vibration_rms_mm_s"

FACTORIES = {
    "features": lambda: FleetFeatures(),
    "classifier": lambda: FailureClassifier(folds=2, max_rows=4000, max_iter=15),
    "rul": lambda: FleetRUL(max_rows=4000, max_iter=15),
    "anomaly": lambda: AnomalyScorer(),
    "trend": lambda: TrendForecaster(),
    "fleet_model": lambda: FleetModel(**FAST),
}


def _output(est: object, X: pd.DataFrame) -> np.ndarray:
    """A numeric summary of what the estimator predicts for X."""
    if isinstance(est, FleetFeatures):
        return est.transform(X).to_numpy()
    if isinstance(est, FailureClassifier):
        return est.predict_proba(X)[:, 1]
    if isinstance(est, FleetRUL):
        return np.column_stack([est.predict(X), *est.predict_interval(X)])
    if isinstance(est, AnomalyScorer):
        return est.score_samples(X)
    if isinstance(est, TrendForecaster):
        return est.predict(X)[["eta_h", "eta_low_h", "eta_high_h"]].to_numpy(dtype=float)
    scores = est.predict_frame(X)
    return scores[["risk", "rul_hours", "anomaly_score", "eta_h"]].to_numpy(dtype=float)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return pump_data()


@pytest.fixture(scope="module")
def pristine() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The data drawn again: as they were before any fit or prediction."""
    return pump_data()


@pytest.fixture(scope="module")
def fitted_on(data) -> dict[str, tuple[object, pd.DataFrame, pd.DataFrame]]:
    """Each estimator fitted once on its own copy of the data, with that copy as the fit left it."""
    X, y = data
    copies = {name: (X.copy(), y.copy()) for name in FACTORIES}
    return {name: (make().fit(*copies[name]), *copies[name]) for name, make in FACTORIES.items()}


@pytest.fixture(scope="module")
def fitted(fitted_on) -> dict[str, object]:
    return {name: est for name, (est, _, _) in fitted_on.items()}


@pytest.mark.parametrize("name", FACTORIES)
def test_init_stores_parameters_only(name: str) -> None:
    est = FACTORIES[name]()
    assert not [k for k in vars(est) if k.endswith("_")]
    assert est.get_params()


@pytest.mark.parametrize("name", FACTORIES)
def test_predicting_before_fit_raises(name: str, data) -> None:
    with pytest.raises(NotFittedError):
        _output(FACTORIES[name](), data[0])


@pytest.mark.parametrize("name", FACTORIES)
def test_fit_returns_self_and_same_seed_same_output(name: str, data, fitted) -> None:
    X, y = data
    est = FACTORIES[name]()
    assert est.fit(X, y) is est
    np.testing.assert_allclose(_output(est, X), _output(fitted[name], X), equal_nan=True)


@pytest.mark.parametrize("name", FACTORIES)
def test_pickle_round_trip(name: str, data, fitted) -> None:
    X, _ = data
    again = pickle.loads(pickle.dumps(fitted[name]))
    np.testing.assert_allclose(_output(again, X), _output(fitted[name], X), equal_nan=True)


@pytest.mark.parametrize("name", [n for n in FACTORIES if n not in ("features", "trend")])
def test_a_missing_sensor_is_survived(name: str, data, fitted) -> None:
    X, _ = data
    full = _output(fitted[name], X)
    out = _output(fitted[name], X.drop(columns=[DROPPED]))
    assert out.shape == full.shape
    if name == "fleet_model":  # its trend crossing may rightly vanish with the sensor (checked below)
        full, out = full[:, :-1], out[:, :-1]
    known = np.isfinite(full)
    assert known.mean() > 0.5  # the comparison below covers most rows
    assert np.isfinite(out[known]).all(), "a prediction made with every sensor is still made without one"
    assert not np.array_equal(out[known], full[known]), "the dropped sensor mattered to the model"


def test_features_of_a_missing_sensor_are_nan_and_the_others_unchanged(data, fitted) -> None:
    X, _ = data
    features = fitted["features"]
    full = features.transform(X)
    out = features.transform(X.drop(columns=[DROPPED]))
    mine = [c for c in full.columns if c.startswith(f"{DROPPED}__")]
    assert mine and out[mine].isna().all().all()
    others = [c for c in full.columns if c not in mine and c not in ("coverage", "since_stop_h")]
    pd.testing.assert_frame_equal(out[others], full[others])


def test_the_trend_forecast_without_a_sensor_is_the_forecast_of_the_others(data, fitted) -> None:
    X, _ = data
    trend = fitted["trend"]
    assert DROPPED in trend.limits_ and len(trend.limits_) > 1
    full = trend.predict(X)
    out = trend.predict(X.drop(columns=[DROPPED]))
    assert (out["eta_sensor"] != DROPPED).all()
    kept = (full["eta_sensor"] != DROPPED).to_numpy()
    columns = ["eta_h", "eta_low_h", "eta_high_h"]
    pd.testing.assert_frame_equal(out.loc[kept, columns], full.loc[kept, columns])
    lost = ~kept & full["eta_h"].notna().to_numpy()
    later = out.loc[lost, "eta_h"].fillna(np.inf).to_numpy() >= full.loc[lost, "eta_h"].to_numpy()
    assert later.all(), "without its earliest sensor a machine's crossing can only come later"


@pytest.mark.parametrize("name", FACTORIES)
def test_inputs_are_not_mutated(name: str, pristine, fitted_on) -> None:
    X, y = pristine
    est, X_fit, y_fit = fitted_on[name]  # the copies it was fitted on, as the fit left them
    _output(est, X_fit)
    pd.testing.assert_frame_equal(X_fit, X)
    pd.testing.assert_frame_equal(y_fit, y)
