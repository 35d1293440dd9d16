"""Machines of one type that send at different rates get features over the same spans of time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import scoring
from tests.models.fleet_support import PUMP, fleet, pump_model, pump_panel

HOUR = pd.Timedelta(hours=1)


def _before_failure(hours: float = 24.0) -> pd.DataFrame:
    """The hourly rows of a simulated pump up to `hours` before its first precursor failure (risk high)."""
    failures = fleet().failures
    failures = failures[(failures["machine_type"] == PUMP) & failures["has_precursor"]]
    panel = pump_panel()
    for _, failure in failures.sort_values("ts").iterrows():
        rows = panel[(panel["machine"] == failure["machine"]) & (panel["ts"] <= failure["ts"] - hours * HOUR)]
        if rows["ts"].max() - rows["ts"].min() >= pd.Timedelta(days=6):
            return rows.reset_index(drop=True)
    raise AssertionError("the simulated fleet has no pump failure after six days of history")


def _at_rate(hourly: pd.DataFrame, every: pd.Timedelta, name: str) -> pd.DataFrame:
    """The same physical trajectory sent every `every`, ending at the hourly machine's last reading.

    Faster: readings interpolated in time between the hourly ones (the hourly values stay where they are);
    slower: only the hourly readings that fall on the slower clock.
    """
    sensors = pump_model().features_.sensors_
    frame = hourly.set_index("ts")
    end = frame.index.max()
    clock = pd.date_range(end=end, start=frame.index.min(), freq=every)
    clock = clock[clock >= frame.index.min()]
    values = frame[sensors].reindex(frame.index.union(clock)).interpolate(method="time").reindex(clock)
    for col in ("tenant", "machine_type", "state"):
        values[col] = frame[col].reindex(clock, method="ffill").to_numpy()
    values["machine"] = name
    values = values.rename_axis("ts").reset_index()
    values["seq"] = np.arange(len(values))
    return values[list(hourly.columns)]


def _scores(*panels: pd.DataFrame) -> pd.DataFrame:
    model = pump_model()
    both = pd.concat(panels, ignore_index=True)
    table = model.features_.transform_last(both)
    table.index = both.loc[table.index, "machine"].to_numpy()
    risk = model.predict_frame(both).set_index("machine")
    return table.join(risk[["risk", "status"]])


def test_a_machine_sending_every_ten_minutes_reads_like_its_hourly_twin() -> None:
    """Every hourly reading is also one of the fast machine's, so its features at the same time are equal."""
    hourly = _before_failure()
    fast = _at_rate(hourly, pd.Timedelta(minutes=10), "fast-twin")
    assert len(fast) > 5 * len(hourly)
    scores = _scores(hourly, fast)
    one, twin = scores.loc[hourly["machine"].iloc[0]], scores.loc["fast-twin"]
    assert one["status"] == twin["status"] == "ok"
    assert one["risk"] > 0.3  # the failure is announced: the twin must see it too
    features = [c for c in scores.columns if c not in ("risk", "status")]
    np.testing.assert_allclose(twin[features].to_numpy(float), one[features].to_numpy(float), rtol=1e-9)
    assert twin["risk"] == pytest.approx(one["risk"], abs=1e-9)


def test_a_machine_switching_to_a_faster_rate_after_a_firmware_update_keeps_its_features() -> None:
    hourly = _before_failure()
    fast = _at_rate(hourly, pd.Timedelta(minutes=10), "updated")
    switch = hourly["ts"].max() - pd.Timedelta(days=2)
    old = hourly[hourly["ts"] <= switch].assign(machine="updated")
    updated = pd.concat([old, fast[fast["ts"] > switch]], ignore_index=True)
    scores = _scores(hourly, updated)
    one, twin = scores.loc[hourly["machine"].iloc[0]], scores.loc["updated"]
    features = [c for c in scores.columns if c not in ("risk", "status")]
    np.testing.assert_allclose(twin[features].to_numpy(float), one[features].to_numpy(float), rtol=1e-9)


@pytest.mark.parametrize("every", ["2h", "3h"])
def test_a_machine_sending_every_few_hours_gets_a_risk_near_its_hourly_twin(every: str) -> None:
    """The missing readings are not invented: each reading is held until the next (within 1.5 of the
    machine's usual interval), so a 24 h window reads a step curve instead of the hourly one. A day before
    each of the simulated pumps' precursor failures that moves the risk by 0.03 on average and at most
    about 0.2 (noise held longer weighs more); counting rows made each 24 h window span two or three days
    and the lookback too short to score at all."""
    failures = fleet().failures
    failures = failures[(failures["machine_type"] == PUMP) & failures["has_precursor"]]
    panel, gaps = pump_panel(), []
    for _, failure in failures.iterrows():
        hourly = panel[(panel["machine"] == failure["machine"]) & (panel["ts"] <= failure["ts"] - 24 * HOUR)]
        if hourly["ts"].max() - hourly["ts"].min() < pd.Timedelta(days=6):
            continue
        hourly = hourly.reset_index(drop=True)
        scores = _scores(hourly, _at_rate(hourly, pd.Timedelta(every), "slow-twin"))
        one, twin = scores.loc[hourly["machine"].iloc[0]], scores.loc["slow-twin"]
        assert twin["status"] == one["status"] == "ok"
        assert twin["history_h"] == one["history_h"]
        assert twin["coverage"] == pytest.approx(one["coverage"], abs=0.05)
        gaps.append(abs(twin["risk"] - one["risk"]))
    assert len(gaps) >= 10
    assert np.mean(gaps) < 0.05
    assert max(gaps) < 0.25


@pytest.mark.parametrize("every", ["10min", "3h"])
def test_the_scorers_window_gives_a_machine_at_another_rate_its_full_history_features(every: str) -> None:
    """The scorer reads `history_hours` before a machine's newest reading; a 3-hourly machine's oldest
    steps hold a reading from before the lookback, so that window must reach it."""
    hourly = _before_failure()
    twin = _at_rate(hourly, pd.Timedelta(every), "twin")
    window = twin[twin["ts"] >= twin["ts"].max() - pd.Timedelta(hours=scoring.history_hours(pump_model()))]
    full, read = _scores(hourly, twin).loc["twin"], _scores(hourly, window).loc["twin"]
    assert read["status"] == full["status"] == "ok"
    features = [c for c in full.index if c not in ("risk", "status")]
    np.testing.assert_allclose(read[features].to_numpy(float), full[features].to_numpy(float), rtol=1e-9)


def test_a_clock_that_jumps_back_and_forth_moves_no_reading_of_a_machine_at_the_types_rate() -> None:
    """Two overlapping clock skews (as the simulator makes them) give three short intervals in a row:
    still a machine at the type's rate, its readings counted as sent, so its features do not change."""
    hourly = _before_failure()
    skewed = hourly.copy()
    at = len(skewed) - 40
    for k in (1, 2, 3):  # intervals of 0.6, 0.6, 0.6 and 2.2 steps
        skewed.loc[at + k : at + k, "ts"] -= pd.Timedelta(minutes=24 * k)
    skewed["machine"] = "skewed"
    scores = _scores(hourly, skewed)
    one, twin = scores.loc[hourly["machine"].iloc[0]], scores.loc["skewed"]
    features = [c for c in scores.columns if c not in ("risk", "status")]
    np.testing.assert_allclose(twin[features].to_numpy(float), one[features].to_numpy(float), rtol=1e-9)
