"""Fleet features: causal, vectorised over machines, robust to missing sensors and short histories."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.fleet_features import EXTREMES, FleetFeatures
from tests.models.fleet_support import pump_panel


def test_features_are_causal_a_cut_panel_gives_the_same_last_row() -> None:
    panel = pump_panel()
    feats = FleetFeatures().fit(panel)
    full = feats.transform(panel)
    cut_at = panel["ts"].min() + pd.Timedelta(days=12)
    cut = panel[panel["ts"] <= cut_at]
    part = feats.transform(cut)
    rows = cut.index[cut["ts"] == cut_at]
    np.testing.assert_allclose(part.loc[rows].to_numpy(), full.loc[rows].to_numpy(), equal_nan=True)


def test_sensors_step_and_sufficiency() -> None:
    panel = pump_panel()
    feats = FleetFeatures().fit(panel)
    assert feats.sensors_ == [
        "flow_m3h",
        "discharge_pressure_bar",
        "motor_current_a",
        "bearing_temp_c",
        "vibration_rms_mm_s",
    ]
    assert feats.step_hours_ == 1.0
    table = feats.transform(panel)
    ok = feats.sufficient(table)
    assert not ok[table["history_h"].to_numpy() < 72].any()
    assert ok.mean() > 0.7


def test_a_machine_that_drifts_shows_a_positive_deviation() -> None:
    panel = pump_panel().copy()
    first = panel["machine"] == panel["machine"].iloc[0]
    late = first & (panel["ts"] >= panel["ts"].min() + pd.Timedelta(days=20))
    panel.loc[late, "vibration_rms_mm_s"] *= 2.0
    table = FleetFeatures().fit(panel).transform(panel)
    row = late[late].index[30]
    assert table.loc[row, "vibration_rms_mm_s__dev24"] > 0.8
    assert table["since_stop_h"].min() >= 0


def test_missing_sensor_gives_nan_features_not_an_error() -> None:
    panel = pump_panel()
    feats = FleetFeatures().fit(panel)
    table = feats.transform(panel.drop(columns=["flow_m3h"]))
    assert table["flow_m3h__dev24"].isna().all()
    assert table["bearing_temp_c__dev24"].notna().any()


def test_a_panel_cut_to_the_lookback_gives_the_full_history_features() -> None:
    """What the scorer reads (one lookback per machine) is all a row's features depend on."""
    panel = pump_panel()
    feats = FleetFeatures().fit(panel)
    full = feats.transform(panel)
    for day in (9, 17, 26):
        end = panel["ts"].min() + pd.Timedelta(days=day, hours=5)
        start = end - pd.Timedelta(hours=feats.lookback_hours())
        cut = panel[(panel["ts"] > start) & (panel["ts"] <= end)]
        last = feats.transform_last(cut)
        assert list(last.index) == list(cut.groupby("machine")["ts"].idxmax().sort_index())
        at_end = last.index[cut.loc[last.index, "ts"] == end]  # a machine silent at `end` reads less
        assert len(at_end) >= 10
        np.testing.assert_allclose(
            last.loc[at_end].to_numpy(), full.loc[at_end].to_numpy(), rtol=1e-7, atol=1e-9, equal_nan=True
        )
        # one row fewer than the lookback changes the features of rows that depend on all of it
        shorter = feats.transform_last(cut[cut["ts"] > start + pd.Timedelta(hours=feats.step_hours_)])
        assert not np.allclose(shorter.loc[at_end].to_numpy(), last.loc[at_end].to_numpy(), equal_nan=True)


def test_stopped_rows_and_gaps_are_skipped_by_every_window() -> None:
    panel = pump_panel().copy()
    feats = FleetFeatures().fit(panel)
    first = panel["machine"] == panel["machine"].iloc[0]
    hole = first & (panel["ts"] >= panel["ts"].min() + pd.Timedelta(days=20))
    hole &= panel["ts"] < panel["ts"].min() + pd.Timedelta(days=20, hours=10)
    panel.loc[hole, "vibration_rms_mm_s"] = np.nan
    table = feats.transform(panel)
    after = table.loc[hole[hole].index[-1] + 1]
    for kind in ("dev6", "dev24", "vol24", "slope24", "ewm_fast", "trend"):
        assert np.isfinite(after[f"vibration_rms_mm_s__{kind}"]), kind


def test_recent_deviations_are_the_dev6_column() -> None:
    panel = pump_panel()
    feats = FleetFeatures().fit(panel)
    full = feats.transform(panel)
    prep = feats.prepare(panel)
    series = feats.recent(prep, 12.0)
    assert series.shape == (len(feats.sensors_), panel["machine"].nunique(), 12)
    machine = prep.machines[3]
    rows = panel.index[panel["machine"] == machine][-12:]
    for j, s in enumerate(feats.sensors_):
        np.testing.assert_allclose(series[j, 3], full.loc[rows, f"{s}__dev6"].to_numpy(), equal_nan=True)


def test_extremes_are_the_most_abnormal_sensor_and_keep_the_other_columns() -> None:
    """`extremes=True` adds the largest |level| and |dev24| over the sensors; nothing else changes."""
    panel = pump_panel().copy()
    first = panel["machine"] == panel["machine"].iloc[0]
    late = first & (panel["ts"] >= panel["ts"].min() + pd.Timedelta(days=20))
    panel.loc[late, "vibration_rms_mm_s"] *= 2.0
    plain = FleetFeatures().fit(panel).transform(panel)
    feats = FleetFeatures(extremes=True).fit(panel)
    table = feats.transform(panel)
    assert list(table.columns) == list(plain.columns) + list(EXTREMES)
    pd.testing.assert_frame_equal(table[plain.columns], plain)
    for kind, name in (("level", "any__level_absmax"), ("dev24", "any__dev24_absmax")):
        per_sensor = table[[f"{s}__{kind}" for s in feats.sensors_]].abs()
        np.testing.assert_allclose(table[name], per_sensor.max(axis=1, skipna=True), equal_nan=True)
    row = late[late].index[30]
    assert table.loc[row, "any__dev24_absmax"] == table.loc[row, "vibration_rms_mm_s__dev24"] > 0.8
    # every sensor missing: no extreme either, rather than 0
    silent = feats.transform(panel.assign(**{s: np.nan for s in feats.sensors_}))
    assert silent[list(EXTREMES)].isna().all().all()
