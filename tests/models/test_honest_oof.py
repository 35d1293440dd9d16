"""The classifier's out-of-fold risk, on which the alert threshold is chosen, never reads its own labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from models.fleet_estimators import FailureClassifier, _pooled_calibrated
from models.fleet_features import FleetFeatures
from models.fleet_model import FleetModel
from models.labels import within
from models.training import choose_threshold
from tests.models.fleet_support import FAST, fleet, pump_data

HORIZON = 168.0
PARAMS = {k: v for k, v in FAST.items() if k != "statsmodels_top"}


def _fit(panel: pd.DataFrame, y: pd.DataFrame) -> FailureClassifier:
    feats = FleetFeatures().fit(panel)
    machines = panel[feats.machine_col].astype(str).to_numpy()
    return FailureClassifier(**PARAMS, horizon_hours=HORIZON).fit_table(
        feats.transform(panel), y, feats, machines
    )


def _flipped(y: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """`y` with the known labels of `rows` turned round (positive ↔ negative); which rows are known stays."""
    positive, known = within(y, HORIZON)
    censor = y["censor_h"].to_numpy(dtype=float)
    ttf = y["ttf_h"].to_numpy(dtype=float).copy()
    to_negative = rows & positive & (censor >= HORIZON)  # stays known once negative
    to_positive = rows & known & ~positive
    ttf[to_negative] = np.inf
    ttf[to_positive] = 10.0
    return y.assign(ttf_h=ttf)


def _scores(machines: int, rows: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw scores with some signal, their labels and machine names, `rows` rows per machine."""
    rng = np.random.default_rng(seed)
    raw = rng.random(machines * rows)
    positive = raw + rng.normal(0.0, 0.3, len(raw)) > 0.8
    return raw, positive, np.repeat([f"m{i:03d}" for i in range(machines)], rows)


def test_the_calibration_of_a_machines_raw_scores_never_reads_its_own_labels() -> None:
    # 13 machines: one left out at a time; 60: groups of three. Flipping a machine's labels (its raw
    # scores as they were) leaves its calibrated risk as it was and moves the others', whose calibrators
    # were fitted on its rows.
    for count in (13, 60):
        raw, positive, machines = _scores(count)
        before = _pooled_calibrated(raw, positive, machines, seed=3)
        mine = machines == "m007"
        after = _pooled_calibrated(raw, np.where(mine, ~positive, positive), machines, seed=3)

        assert not np.isnan(before).any()
        np.testing.assert_array_equal(after[mine], before[mine])
        moved = np.unique(machines[after != before])
        assert len(moved) == count - (1 if count <= 20 else count // 20)
        assert "m007" not in moved


def test_a_machine_whose_others_hold_no_positive_row_gets_no_calibrated_risk() -> None:
    raw, positive, machines = _scores(8)
    positive &= machines == "m002"  # the only machine with positive rows

    out = _pooled_calibrated(raw, positive, machines, seed=0)

    assert np.isnan(out[machines == "m002"]).all()
    assert not np.isnan(out[machines != "m002"]).any()


def test_flipping_a_machines_labels_reaches_its_risk_only_through_the_other_folds_boosters() -> None:
    # Its own fold's booster never trained on it, so its raw out-of-fold scores do not move; its
    # calibrator is fitted on the other machines' scores and labels only. Its labels do reach the other
    # folds' boosters, which scored those machines, so its calibrated risk may move (second order): what
    # holds exactly is that, given the new fit's raw scores, its old and its flipped labels give it the
    # same calibrated risk.
    panel, y = pump_data()
    machines = panel["machine"].astype(str).to_numpy()
    positive, known = within(y, HORIZON)
    before = _fit(panel, y)
    held = ~np.isnan(before.oof_)
    failing = [m for m in np.unique(machines[held]) if (positive & held & (machines == m)).sum() >= 24]
    assert failing  # machines whose labels have something to flip
    mine = machines == failing[0]
    flipped = _flipped(y, mine)
    flipped_positive, flipped_known = within(flipped, HORIZON)
    assert (flipped_known == known).all()
    assert (flipped_positive[mine & known] != positive[mine & known]).all()

    after = _fit(panel, flipped)

    np.testing.assert_array_equal(after.oof_raw_[mine], before.oof_raw_[mine])
    scored = ~np.isnan(after.oof_raw_)
    with_old_labels = np.full(len(y), np.nan)
    with_old_labels[scored] = _pooled_calibrated(
        after.oof_raw_[scored], positive[scored], machines[scored], before.random_state
    )
    np.testing.assert_array_equal(after.oof_[mine], with_old_labels[mine])
    # The flip does reach the other machines' calibration.
    assert not np.array_equal(with_old_labels[held & ~mine], after.oof_[held & ~mine])


def test_on_features_without_signal_the_out_of_fold_risk_does_not_beat_the_base_rate() -> None:
    # Isotonic regression fitted on the rows it scores can be no worse than a constant (the constant is
    # monotone), so on pure noise the old out-of-fold risk "beat" the base rate (Brier 0.2388 vs 0.2391):
    # the rows its top blocks hold were positive because they had been pooled by their own labels.
    panel, y = pump_data()
    feats = FleetFeatures().fit(panel)
    noise = np.random.default_rng(0).normal(size=(len(panel), 6))
    table = pd.DataFrame(noise, columns=[f"noise{i}" for i in range(6)]).assign(history_h=1e4, coverage=1.0)
    machines = panel["machine"].astype(str).to_numpy()

    clf = FailureClassifier(**PARAMS, horizon_hours=HORIZON).fit_table(table, y, feats, machines)

    positive, _ = within(y, HORIZON)
    held = ~np.isnan(clf.oof_)
    assert held.sum() > 10_000
    base = positive[held].mean()
    brier = np.mean((clf.oof_[held] - positive[held]) ** 2)
    assert brier > np.mean((base - positive[held]) ** 2)


def test_a_machine_alone_in_its_fold_is_calibrated_on_the_other_folds_machines() -> None:
    # Three pumps, three folds: each machine's raw score comes from a booster trained on the other two,
    # and its calibrator is an isotonic fitted on the other two machines' out-of-fold scores.
    run = fleet()
    panel, y = pump_data()
    few = panel["machine"].astype(str).isin(sorted(panel["machine"].astype(str).unique())[:3]).to_numpy()
    panel, y = panel[few].reset_index(drop=True), y[few].reset_index(drop=True)
    machines = panel["machine"].astype(str).to_numpy()
    positive, _ = within(y, HORIZON)
    assert all(positive[machines == m].any() for m in np.unique(machines))

    model = FleetModel(**{**FAST, "folds": 3}).fit(panel, y)

    clf = model.classifier_
    scored = ~np.isnan(clf.oof_raw_)
    for m in np.unique(machines):
        own, others = scored & (machines == m), scored & (machines != m)
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        expected = iso.fit(clf.oof_raw_[others], positive[others]).predict(clf.oof_raw_[own])
        np.testing.assert_array_equal(clf.oof_[own], expected)
    assert np.isnan(clf.oof_[~scored]).all()
    threshold, stats = choose_threshold(model, panel, run.failures, run.maintenance)
    assert stats  # chosen on the out-of-fold alerts, not the default
