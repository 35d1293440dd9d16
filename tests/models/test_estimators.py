"""Checks every RUL estimator must pass: the scikit-learn contract, determinism, pickling, a missing
sensor at predict time, untouched inputs, row order, and features that never look ahead."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from models import cmapss
from models.features import WindowFeatures
from models.rul import MeanRUL, RULRegressor, run_to_failure_rul


def _window_features() -> WindowFeatures:
    return WindowFeatures(sensors=cmapss.SENSORS, random_state=0)


def _rul_regressor() -> RULRegressor:
    return RULRegressor(
        features=_window_features(), max_iter=60, calibration_folds=2, n_threads=1, random_state=0
    )


def _rul_regressor_no_interval() -> RULRegressor:
    return RULRegressor(max_iter=20, n_models=2, interval=None, n_threads=1, random_state=3)


FACTORIES: list[Callable[[], BaseEstimator]] = [
    _window_features,
    MeanRUL,
    _rul_regressor,
    _rul_regressor_no_interval,
]


def _output(est: BaseEstimator, X: pd.DataFrame) -> np.ndarray:
    """What the estimator produces for X, as a float array."""
    if isinstance(est, WindowFeatures):
        return est.transform(X).to_numpy()
    return np.asarray(est.predict(X), dtype=float)


def _fit(est: BaseEstimator, X: pd.DataFrame) -> BaseEstimator:
    return est.fit(X, run_to_failure_rul(X))


@pytest.fixture(params=FACTORIES, ids=lambda f: f.__name__.strip("_"))
def make(request: pytest.FixtureRequest) -> Callable[[], BaseEstimator]:
    return request.param


# Per estimator: the instance fitted on a copy of the data, the data as they were before that fit, the copy
# and its targets as the fit left them, and the targets as they were before it.
_FITTED: dict[str, tuple[BaseEstimator, pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]] = {}


@pytest.fixture
def fitted_on(
    make: Callable[[], BaseEstimator], small: pd.DataFrame
) -> tuple[BaseEstimator, pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """One instance per estimator fitted on its own copy of the data, and the inputs it was given."""
    if make.__name__ not in _FITTED:
        before, X = small.copy(), small.copy()
        y = run_to_failure_rul(X)
        y_copy = y.copy()
        _FITTED[make.__name__] = (make().fit(X, y), before, X, y, y_copy)
    return _FITTED[make.__name__]


@pytest.fixture
def fitted(fitted_on) -> BaseEstimator:
    """The fitted instance, shared by the checks that only read it."""
    return fitted_on[0]


def test_init_stores_parameters_only(make: Callable[[], BaseEstimator]) -> None:
    est = make()
    assert not [k for k in vars(est) if k.endswith("_")]
    assert clone(est).get_params(deep=False).keys() == est.get_params(deep=False).keys()


def test_fit_returns_self_and_learned_state_ends_in_underscore(make, small: pd.DataFrame) -> None:
    est = make()
    before = set(vars(est))
    assert _fit(est, small) is est
    learned = set(vars(est)) - before
    assert learned and all(k.endswith("_") for k in learned)


def test_predicting_before_fit_raises(make, small: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError):
        _output(make(), small)


def test_same_seed_same_output(make, fitted: BaseEstimator, small: pd.DataFrame) -> None:
    a = _output(fitted, small)
    b = _output(_fit(make(), small), small)
    np.testing.assert_array_equal(a, b)


def test_pickle_round_trip(fitted: BaseEstimator, small: pd.DataFrame) -> None:
    est = fitted
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(_output(est, small), _output(again, small))


def test_missing_sensor_is_survived(fitted: BaseEstimator, small: pd.DataFrame) -> None:
    est = fitted
    out = _output(est, small.drop(columns=["s11"]))
    assert len(out) == len(small)
    assert np.isfinite(out).all()


def test_nan_readings_are_survived(fitted: BaseEstimator, small: pd.DataFrame) -> None:
    est = fitted
    holes = small.copy()
    holes.loc[holes.index[::7], "s4"] = np.nan
    holes.loc[holes["unit"] == 3, "s9"] = np.nan
    assert np.isfinite(_output(est, holes)).all()


def test_inputs_are_not_mutated(fitted_on) -> None:
    est, before, X, y, y_copy = fitted_on
    _output(est, X)
    pd.testing.assert_frame_equal(X, before)
    np.testing.assert_array_equal(y, y_copy)


def test_row_order_does_not_matter(fitted: BaseEstimator, small: pd.DataFrame) -> None:
    est = fitted
    shuffled = small.sample(frac=1.0, random_state=1)
    expected = pd.DataFrame(_output(est, small), index=small.index)
    got = pd.DataFrame(_output(est, shuffled), index=shuffled.index)
    pd.testing.assert_frame_equal(got.loc[small.index], expected)


def test_features_never_look_ahead(small: pd.DataFrame) -> None:
    feats = _window_features().fit(small, run_to_failure_rul(small))
    full = feats.transform(small)
    cut = small[small["cycle"] <= 40]
    np.testing.assert_allclose(feats.transform(cut).to_numpy(), full.loc[cut.index].to_numpy(), atol=1e-9)


def test_constant_sensors_are_dropped(small: pd.DataFrame) -> None:
    feats = _window_features().fit(small)
    assert {"s1", "s5", "s10", "s16", "s18", "s19"}.isdisjoint(feats.sensors_)
    assert {"s2", "s3", "s4", "s7", "s11", "s12"} <= set(feats.sensors_)


def test_predict_last_gives_one_row_per_unit_with_an_interval(small: pd.DataFrame) -> None:
    model = _rul_regressor().fit(small)
    last = model.predict_last(small.sample(frac=1.0, random_state=2))
    assert list(last.index) == sorted(small["unit"].unique())
    assert ((last["lower"] <= last["rul"]) & (last["rul"] <= last["upper"])).all()
    assert last["rul"].between(0, model.cap).all()
