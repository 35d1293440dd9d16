"""C-MAPSS protocol: file formats, the synthetic test split, engine-wise folds without leakage, and the
evaluate command end to end on files written from the real FD001 training data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import cmapss, metrics
from models.rul import RULRegressor

FAST = {"max_iter": 15, "interval": None}


def test_read_write_round_trip(small: pd.DataFrame, tmp_path: Path) -> None:
    cmapss.write_cmapss(small, tmp_path / "train.txt")
    again = cmapss.read_cmapss(tmp_path / "train.txt")
    pd.testing.assert_frame_equal(again, small, check_exact=False, rtol=1e-9)
    cmapss.write_rul(np.array([112, 98, 7]), tmp_path / "rul.txt")
    np.testing.assert_array_equal(cmapss.read_rul(tmp_path / "rul.txt"), [112, 98, 7])


def test_real_file_shape(fd001: pd.DataFrame) -> None:
    assert fd001.shape == (20631, 26)
    assert fd001["unit"].nunique() == 100


def test_wrong_column_count_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("1 1 0.1 0.2\n1 2 0.1 0.2\n")
    with pytest.raises(ValueError, match="expected 26 columns"):
        cmapss.read_cmapss(tmp_path / "bad.txt")


def test_test_split_cuts_each_unit_before_failure(fd001: pd.DataFrame) -> None:
    units = np.arange(1, 101)
    test, rul = cmapss.make_test_split(fd001, units[::-1], seed=4)
    life = fd001.groupby("unit")["cycle"].max()
    kept = test.groupby("unit")["cycle"].agg(["min", "max", "count"])
    assert list(kept.index) == list(units)
    assert (kept["min"] == 1).all() and (kept["count"] == kept["max"]).all()  # a prefix of each engine
    np.testing.assert_array_equal(rul, life.loc[units].to_numpy() - kept["max"].to_numpy())
    assert (kept["count"] >= 31).all() and rul.min() >= 5 and rul.max() <= 150
    assert 60 < rul.mean() < 95  # spread over the range, like RUL_FD001 (mean 75.5)
    merged = test.merge(fd001, on=["unit", "cycle"], suffixes=("", "_orig"))
    np.testing.assert_array_equal(merged["s4"], merged["s4_orig"])
    again, rul_again = cmapss.make_test_split(fd001, units, seed=4)
    pd.testing.assert_frame_equal(again, test)
    np.testing.assert_array_equal(rul_again, rul)


def test_engine_folds_partition_the_units() -> None:
    folds = cmapss.engine_folds(np.repeat(np.arange(1, 101), 3), 5, seed=0)
    assert [len(f) for f in folds] == [20] * 5
    assert sorted(np.concatenate(folds)) == list(range(1, 101))


def test_cross_validation_never_trains_on_validation_engines(
    small: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fitted: list[set[int]] = []
    scored: list[set[int]] = []
    fit, predict_last = RULRegressor.fit, RULRegressor.predict_last

    def spy_fit(self, X, y=None):
        fitted.append(set(X["unit"]))
        return fit(self, X, y)

    def spy_predict_last(self, X):
        scored.append(set(X["unit"]))
        return predict_last(self, X)

    monkeypatch.setattr(RULRegressor, "fit", spy_fit)
    monkeypatch.setattr(RULRegressor, "predict_last", spy_predict_last)
    cmapss.write_cmapss(small, tmp_path / "train.txt")
    result = cmapss.cross_validate_cmapss(tmp_path / "train.txt", folds=3, seed=1, **FAST)
    assert len(fitted) == len(scored) == 3
    for train_units, val_units in zip(fitted, scored, strict=True):
        assert train_units.isdisjoint(val_units)
        assert train_units | val_units == set(range(1, 13))
    assert set().union(*scored) == set(range(1, 13))
    assert len(result["folds"]) == 3 and result["units"] == 12
    assert np.isfinite(result["mean"]["rmse"]) and np.isfinite(result["mean"]["rmse_all_cycles"])


@pytest.mark.slow
def test_evaluate_end_to_end_beats_a_constant(fd001: pd.DataFrame, tmp_path: Path) -> None:
    train = fd001[fd001["unit"] <= 60]
    test, rul = cmapss.make_test_split(fd001, np.arange(81, 101), seed=11)
    cmapss.write_cmapss(train, tmp_path / "train.txt")
    cmapss.write_cmapss(test, tmp_path / "test.txt")
    cmapss.write_rul(rul, tmp_path / "rul.txt")

    paths = [tmp_path / name for name in ("train.txt", "test.txt", "rul.txt")]
    result = cmapss.evaluate_cmapss(*paths, seed=0, max_iter=100, calibration_folds=2)

    capped = np.minimum(rul, 125)
    life = train.groupby("unit")["cycle"].transform("max") - train["cycle"]
    naive = metrics.rmse(capped, np.full(len(rul), np.minimum(life, 125).mean()))
    assert {"rmse", "score", "rmse_raw", "units", "seconds", "interval_coverage"} <= result.keys()
    assert result["units"] == 20 and result["train_units"] == 60
    assert np.isfinite(result["rmse"]) and np.isfinite(result["score"])
    assert result["rmse"] < 0.5 * naive
    assert result["baseline_rmse"] == pytest.approx(naive)
    assert result["rmse_raw"] >= result["rmse"] - 1e-9 or rul.max() <= 125


def test_evaluate_rejects_a_rul_file_of_the_wrong_length(small: pd.DataFrame, tmp_path: Path) -> None:
    test, rul = cmapss.make_test_split(small, [1, 2, 3], seed=0)
    cmapss.write_cmapss(small, tmp_path / "train.txt")
    cmapss.write_cmapss(test, tmp_path / "test.txt")
    cmapss.write_rul(rul[:2], tmp_path / "rul.txt")
    with pytest.raises(ValueError, match="2 values for 3 test units"):
        cmapss.evaluate_cmapss(tmp_path / "train.txt", tmp_path / "test.txt", tmp_path / "rul.txt")


def test_phm08_score_is_exported() -> None:
    assert cmapss.phm08_score([10], [20]) == pytest.approx(np.e - 1)
