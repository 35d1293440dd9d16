"""Daylight saving: a fleet working shifts by a local clock keeps its daily reference across a switch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.cold_start import ColdStartModel
from models.fleet_features import FleetFeatures

ZONE = "Europe/Berlin"


def _shift_fleet(zone: str | None, end: str = "2026-11-10") -> pd.DataFrame:
    """Ten machines running 06:00-22:00 Berlin time, hourly readings; `zone` is what the panel says."""
    rng = np.random.default_rng(1)
    ts = pd.date_range("2026-01-01", end, freq="h", tz="UTC", inclusive="left")
    on = (ts.tz_convert(ZONE).hour >= 6) & (ts.tz_convert(ZONE).hour < 22)
    frames = []
    for m in range(10):
        frame = pd.DataFrame(
            {
                "machine": m,
                "ts": ts,
                "seq": np.arange(len(ts)),
                "temp_c": np.where(on, 70.0, 40.0) + rng.normal(0, 0.5, len(ts)),
                "vib": np.where(on, 3.0, 0.5) + rng.normal(0, 0.05, len(ts)),
                "machine_type": "press",
            }
        )
        if zone is not None:
            frame["timezone"] = zone
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("switch", ["2026-03-29", "2026-10-25"])
def test_a_daylight_saving_switch_scores_like_any_other_day(switch: str) -> None:
    panel = _shift_fleet(ZONE)
    model = ColdStartModel(limits={}).fit(panel[panel["ts"] < "2026-03-20"])
    risk, _ = model.risk_rows(panel)
    daily = pd.Series(risk, index=panel["ts"]).resample("D").max()
    day = pd.Timestamp(switch, tz="UTC")
    switch_days = daily[day : day + pd.Timedelta(days=2)]
    normal = pd.concat(
        [
            daily[day - pd.Timedelta(days=10) : day - pd.Timedelta(days=1)],
            daily[day + pd.Timedelta(days=4) : day + pd.Timedelta(days=10)],
        ]
    )
    assert switch_days.max() <= normal.max(), (switch_days.round(3).to_dict(), normal.max())
    # the scorer's path at the shift's first hour (last rows, one lookback read): no anomaly alert
    cut = panel[(panel["ts"] <= day + pd.Timedelta(hours=4)) & (panel["ts"] > day - pd.Timedelta(days=4))]
    anomaly = model.predict_frame(cut)["anomaly_score"]
    assert anomaly.max() < model.threshold_, anomaly.round(3).tolist()


def test_a_panel_in_utc_gets_the_features_of_a_panel_without_zones() -> None:
    panel = _shift_fleet(None, end="2026-04-10")
    features = FleetFeatures().fit(panel)
    expected = features.transform(panel)
    for zone in ("UTC", ""):
        assert features.transform(panel.assign(timezone=zone)).equals(expected)
