"""Fleet features: causal, vectorised over machines, robust to missing sensors and short histories."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.fleet_features import FleetFeatures
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
