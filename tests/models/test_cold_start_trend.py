"""Cold start's trend to limit on a type without OEM limits: a healthy fleet stays quiet, a climb alerts."""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd

from models import scoring
from models.cold_start import ColdStartModel

START = pd.Timestamp("2026-02-01", tz="UTC")  # training ends, hourly scoring starts
ONSET = START + pd.Timedelta(days=2)  # the degrading press starts to run hot
HOT = ONSET + pd.Timedelta(hours=96)  # and is 10 °C above its usual level
HEALTHY = 10


def presses() -> pd.DataFrame:
    """Ten healthy presses on clean 06:00-22:00 UTC shifts, hourly, and an eleventh whose temperature
    climbs by 10 °C over four days from `ONSET` (quadratically: slowly first, as wear does)."""
    rng = np.random.default_rng(1)
    ts = pd.date_range("2026-01-01", "2026-02-10", freq="h", tz="UTC", inclusive="left")
    on = (ts.hour >= 6) & (ts.hour < 22)
    climb = 10.0 * np.clip((ts - ONSET) / pd.Timedelta(hours=96), 0.0, None) ** 2
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "machine": m,
                    "ts": ts,
                    "seq": np.arange(len(ts)),
                    "temp_c": np.where(on, 70.0, 40.0) + rng.normal(0, 0.5, len(ts)) + climb * (m == HEALTHY),
                    "vib": np.where(on, 3.0, 0.5) + rng.normal(0, 0.05, len(ts)),
                    "machine_type": "press",
                }
            )
            for m in range(HEALTHY + 1)
        ],
        ignore_index=True,
    )


@lru_cache(maxsize=1)
def _hourly_scores() -> pd.DataFrame:
    """The scorer's view, hour by hour for six days after training: each machine's last prediction from
    the history it reads (`scoring.history_hours`), of a cold-start model without OEM limits trained on
    the healthy presses."""
    panel = presses()
    model = ColdStartModel(limits={}).fit(panel[(panel["ts"] < START) & (panel["machine"] < HEALTHY)])
    history = pd.Timedelta(hours=scoring.history_hours(model))
    frames = []
    for hour in range(6 * 24):
        now = START + pd.Timedelta(hours=hour)
        frames.append(model.predict_frame(panel[(panel["ts"] <= now) & (panel["ts"] >= now - history)]))
    return pd.concat(frames, ignore_index=True).assign(ts=lambda f: pd.to_datetime(f["ts"], utc=True))


def test_a_healthy_fleet_without_oem_limits_gets_no_trend_alerts() -> None:
    # The learned limit is 8 robust sd of the 6-hour deviation (3.5 % for the temperature); a Holt slope
    # of noise extrapolated 72 h crossed it: 430 of 1,440 healthy machine-hours alerted at 0.85.
    scores = _hourly_scores()
    healthy = scores[scores["machine"] < HEALTHY]
    assert len(healthy) == 1440
    alerts = healthy[healthy["alert"]]
    assert alerts.empty, alerts[["machine", "ts", "failure_mode", "eta_h"]].head(10).to_string()


def test_a_press_running_hotter_and_hotter_still_alerts_by_its_trend_two_days_ahead() -> None:
    scores = _hourly_scores()
    hot = scores[scores["machine"] == HEALTHY]
    first = hot[hot["alert"]].iloc[0]
    assert first["failure_mode"] == "trend:temp_c" and first["ts"] > ONSET, first.to_dict()
    # A sensor its type does not describe is spelled out, with the reading the forecast starts from.
    assert re.fullmatch(
        r"no failure history yet: temp c \d+(\.\d+)?, forecast to cross its limit in \d+ h",
        first["explanation"],
    ), first["explanation"]
    assert HOT - first["ts"] >= pd.Timedelta(hours=48), first["ts"]
    assert hot[hot["ts"] >= first["ts"]]["alert"].mean() > 0.9
