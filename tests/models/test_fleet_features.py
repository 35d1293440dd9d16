"""Fleet features: causal, vectorised over machines, robust to missing sensors and short histories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.fleet_features import EXTREMES, SENSOR_HEALTH, FleetFeatures
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


@pytest.mark.parametrize("options", [{}, {"extremes": True, "sensor_health": True}])
def test_a_panel_cut_to_the_lookback_gives_the_full_history_features(options: dict) -> None:
    """What the scorer reads (one lookback per machine) is all a row's features depend on."""
    panel = pump_panel()
    feats = FleetFeatures(**options).fit(panel)
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


def _machine_rows(panel: pd.DataFrame, day: float, machine: str | None = None) -> tuple[pd.Index, int]:
    """A machine's rows (the first one's by default) in time order, and the position of its row `day` days
    into the panel."""
    rows = panel.index[panel["machine"] == (machine or panel["machine"].iloc[0])]
    at = panel["ts"].min() + pd.Timedelta(days=day)
    return rows, int(np.flatnonzero(panel.loc[rows, "ts"].to_numpy() == at)[0])


def test_sensor_health_adds_its_columns_and_keeps_the_others() -> None:
    panel = pump_panel()
    plain = FleetFeatures().fit(panel).transform(panel)
    table = FleetFeatures(sensor_health=True).fit(panel).transform(panel)
    assert list(table.columns) == list(plain.columns) + list(SENSOR_HEALTH)
    pd.testing.assert_frame_equal(table[plain.columns], plain)


def test_a_spike_raises_the_jump_then_the_spike_count_and_nothing_before_it() -> None:
    """One isolated outlier: a jump at its row, one spike counted once it came back, for the next 22 h."""
    panel = pump_panel().copy()
    feats = FleetFeatures(sensor_health=True).fit(panel)
    rows, i = _machine_rows(panel, 20)
    clean = feats.transform(panel)
    panel.loc[rows[i], "bearing_temp_c"] += 25.0
    table = feats.transform(panel)
    before = rows[:i]
    pd.testing.assert_frame_equal(table.loc[before], clean.loc[before])
    assert table.loc[rows[i], "any__jump"] > 10 * clean.loc[rows[i], "any__jump"]
    assert table.loc[rows[i], "any__spikes24"] == clean.loc[rows[i], "any__spikes24"]
    added = table["any__spikes24"] - clean["any__spikes24"]
    # counted while the window holds the row before the spike; the baseline day repeats it a day later
    assert (added.loc[rows[i + 1 : i + 23]] == 1).all()
    assert added.loc[rows[i + 23]] == 0


def test_one_sensor_drifting_alone_reads_unlike_two_sensors_drifting_together() -> None:
    """A drift of one sensor widens the gap between the two most abnormal sensors; wear moving two linked
    sensors by as many robust sds each does not."""
    panel = pump_panel()
    feats = FleetFeatures(sensor_health=True).fit(panel)
    clean = feats.transform(panel)
    days = (panel["ts"] >= panel["ts"].min() + pd.Timedelta(days=20)).to_numpy()
    quiet = clean[days].groupby(panel.loc[days, "machine"])["any__z24_gap"].max().idxmin()
    rows, i = _machine_rows(panel, 20, quiet)  # no sensor abnormal there without the drift
    ramp = np.minimum(np.arange(1, len(rows) - i + 1) / 48.0, 1.0)
    sensors = ["bearing_temp_c", "vibration_rms_mm_s"]
    size = {s: 20.0 * feats.dev24_sd_[feats.sensors_.index(s)] for s in sensors}

    def drifted(names: list[str]) -> pd.DataFrame:
        moved = panel.copy()
        for s in names:
            moved.loc[rows[i:], s] *= 1.0 + size[s] * ramp
        return feats.transform(moved).loc[rows[i + 36 : i + 48]]

    clean = clean.loc[rows[i + 36 : i + 48]]
    alone, together = drifted(sensors[:1]), drifted(sensors)
    assert (alone["any__z24_gap"] > clean["any__z24_gap"] + 5).all()
    assert (alone["any__z24_share"] < 0.5).all()
    assert (together["any__z24_share"] > 0.6).all()
    assert (together["any__z24_gap"] < alone["any__z24_gap"]).all()
