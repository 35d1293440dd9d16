"""The trend an explanation gives is the readings' own: a sensor that only rises never reads as falling."""

from __future__ import annotations

import math

import pandas as pd

from models import scoring
from models.cold_start import ColdStartModel
from tests.models.test_cold_start_trend import HEALTHY, START, presses

PUMPS_START = pd.Timestamp("2026-01-01", tz="UTC")
HOURS = 24 * 28
RISE_FROM = 24 * 26  # the README's bp-003: flat for 26 days, then +0.15 mm/s per hour for 48 h


def booster_pumps() -> pd.DataFrame:
    """README "Onboarding a fleet" step 4's readings: three pumps, bp-003's vibration climbing at the end."""
    rows = []
    for m, code in enumerate(["bp-001", "bp-002", "bp-003"]):
        for h in range(HOURS):
            rise = 0.15 * max(0, h - RISE_FROM) if code == "bp-003" else 0.0
            rows.append(
                {
                    "machine": code,
                    "ts": PUMPS_START + pd.Timedelta(hours=h),
                    "seq": h,
                    "bearing_temp_c": round(60 + 3 * math.sin(h / 12) + m, 2),
                    "vibration_rms_mm_s": round(2 + 0.1 * m + rise, 2),
                    "machine_type": "booster_pump",
                }
            )
    return pd.DataFrame(rows)


def test_a_vibration_that_only_rises_reads_as_rising_with_its_trend_per_day() -> None:
    panel = booster_pumps()
    scored = ColdStartModel(limits={}).fit(panel).predict_frame(panel).set_index("machine")
    texts = {c["sensor"]: c["text"] for c in scored.at["bp-003", "contributions"]}
    # The last 24 h average 2.2 + 0.15 x 35.5 = 7.525 mm/s, the 24 h before 2.2 + 0.15 x 11.5 = 3.925:
    # +3.6 mm/s in a day, +92 %/day. The deviation from the same hours of earlier days falls meanwhile
    # (the reference days climbed too): the old text said "trend -28 %/day".
    assert texts["vibration_rms_mm_s"].startswith(
        "vibration rms mm s rose 147 % against the same hours of earlier days, trend +92 %/day, "
    ), texts
    flat = {c["sensor"]: c["text"] for c in scored.at["bp-001", "contributions"]}
    assert "trend" not in flat["vibration_rms_mm_s"], flat


def test_a_healthy_press_on_two_shifts_reads_no_trend_at_any_hour() -> None:
    # Its temperature steps between 40 and 70 °C twice a day: a slope within a 24 h window read it as
    # -67 to +67 %/day, depending on the hour; the day-over-day change of whole days is nil.
    panel = presses()
    panel = panel[panel["machine"] < HEALTHY]
    model = ColdStartModel(limits={}).fit(panel[panel["ts"] < START])
    history = pd.Timedelta(hours=scoring.history_hours(model))
    machine = panel[panel["machine"] == 0]
    for hour in range(24):
        now = START + pd.Timedelta(hours=hour)
        scored = model.predict_frame(machine[(machine["ts"] <= now) & (machine["ts"] >= now - history)])
        texts = [c["text"] for c in scored.at[0, "contributions"]]
        assert not any("trend" in t for t in texts), (hour, texts)
