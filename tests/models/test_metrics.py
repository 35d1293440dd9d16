"""Formula checks for the RUL error measures."""

from __future__ import annotations

import math

import pytest

from models import metrics


@pytest.mark.parametrize(
    ("true", "pred", "expected"),
    [
        ([50], [50], 0.0),
        ([50], [37], math.e - 1),  # d = -13: early, exp(13/13) - 1
        ([50], [60], math.e - 1),  # d = +10: late, exp(10/10) - 1
        ([10, 100], [36, 74], (math.exp(2.6) - 1) + (math.exp(2) - 1)),  # d = +26 and -26
    ],
)
def test_phm08_score_by_hand(true: list[int], pred: list[int], expected: float) -> None:
    assert metrics.phm08_score(true, pred) == pytest.approx(expected)


def test_phm08_score_punishes_late_more_than_early() -> None:
    assert metrics.phm08_score([50], [70]) > metrics.phm08_score([50], [30])


def test_rmse_and_coverage() -> None:
    assert metrics.rmse([0, 0], [3, 4]) == pytest.approx(math.sqrt(12.5))
    assert metrics.coverage([1, 5, 9], [0, 6, 8], [2, 7, 10]) == pytest.approx(2 / 3)


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="y_pred has 1"):
        metrics.rmse([1, 2], [1])
