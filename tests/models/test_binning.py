"""The one-pass weighted bin edges are scikit-learn's own, bit for bit, and so is the boosting on them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting import binning as sk_binning
from threadpoolctl import threadpool_limits

from models import binning
from tests.models.fleet_support import pump_model


def _columns() -> list[tuple[np.ndarray, np.ndarray]]:
    """Columns as the fleet's features give them: ties, NaN, weights of 1 and a finding's weight, zeros."""
    rng = np.random.default_rng(3)
    out = []
    for n in (300, 1000, 4000):
        for decimals in (0, 1, 3, None):
            col = rng.normal(50, 20, n)
            col = col if decimals is None else col.round(decimals)
            col[rng.random(n) < 0.05] = np.nan
            weight = np.where(rng.random(n) < 0.15, rng.choice([0.3, 2.5, 1 / 3]), 1.0)
            weight[rng.random(n) < 0.02] = 0.0
            out.append((col, weight))
    col = np.repeat(np.arange(600, dtype=float), 5)  # every value tied five times
    out.append((col, np.resize([1.0, 0.3, 1.0, 1 / 3, 2.5], len(col))))
    return out


@pytest.mark.parametrize("column", range(len(_columns())))
def test_the_edges_are_scikit_learns(column: int) -> None:
    col, weight = _columns()[column]
    for max_bins in (255, 64):
        slow = sk_binning._find_binning_thresholds(col, max_bins, weight.copy())
        fast = binning.find_thresholds(col, max_bins, weight.copy())
        assert fast.dtype == slow.dtype and fast.tobytes() == slow.tobytes()
    unweighted = sk_binning._find_binning_thresholds(col, 255)
    assert binning.find_thresholds(col, 255).tobytes() == unweighted.tobytes()


def test_a_weighted_booster_fitted_with_them_predicts_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, 3)).round(2)
    x[rng.random(x.shape) < 0.03] = np.nan
    y = (np.nan_to_num(x[:, 0]) + rng.normal(scale=0.5, size=2000)) > 0.8
    weight = np.where(rng.random(2000) < 0.2, 0.3, 1.0)

    def fitted() -> HistGradientBoostingClassifier:
        with threadpool_limits(1):  # as the fleet model fits it
            return HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y, sample_weight=weight)

    monkeypatch.setattr(sk_binning, "_find_binning_thresholds", binning._SLOW)
    slow = fitted()
    monkeypatch.setattr(sk_binning, "_find_binning_thresholds", binning.find_thresholds)
    fast = fitted()
    for a, b in zip(slow._bin_mapper.bin_thresholds_, fast._bin_mapper.bin_thresholds_, strict=True):
        assert a.tobytes() == b.tobytes()
    assert slow.predict_proba(x).tobytes() == fast.predict_proba(x).tobytes()


def test_the_fleet_models_boosting_bins_with_them() -> None:
    pump_model()  # a fleet model's fit

    assert sk_binning._find_binning_thresholds is binning.find_thresholds
