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
    scores = est.score(X)
    return scores[["risk", "rul_hours", "anomaly_score", "eta_h"]].to_numpy(dtype=float)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return pump_data()


@pytest.fixture(scope="module")
def fitted(data) -> dict[str, object]:
    X, y = data
    return {name: make().fit(X, y) for name, make in FACTORIES.items()}


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


@pytest.mark.parametrize("name", FACTORIES)
def test_a_missing_sensor_is_survived(name: str, data, fitted) -> None:
    X, _ = data
    out = _output(fitted[name], X.drop(columns=["vibration_rms_mm_s"]))
    assert len(out) in (len(X), X["machine"].nunique())


@pytest.mark.parametrize("name", FACTORIES)
def test_inputs_are_not_mutated(name: str, data, fitted) -> None:
    X, y = data
    X0, y0 = X.copy(), y.copy()
    FACTORIES[name]().fit(X, y)
    _output(fitted[name], X)
    pd.testing.assert_frame_equal(X, X0)
    pd.testing.assert_frame_equal(y, y0)
