"""A cold-start risk that is the anomaly score says what the score means to a technician: how far the
machine's readings are from its type's usual ones, on a scale of 0 to 1, and from where it alerts."""

from __future__ import annotations

import pandas as pd

from models import cold_start, scoring
from models.cold_start import ColdStartModel
from tests.models.test_cold_start_trend import HEALTHY, START, presses


def _explained(vibration_step: float) -> pd.Series:
    """Press 0's prediction 30 h after training, its vibration `vibration_step` higher for the last 12 h."""
    panel = presses()
    panel = panel[panel["machine"] < HEALTHY]
    model = ColdStartModel(limits={}).fit(panel[panel["ts"] < START])
    now = START + pd.Timedelta(hours=30)
    window = panel[
        (panel["ts"] <= now) & (panel["ts"] >= now - pd.Timedelta(hours=scoring.history_hours(model)))
    ]
    window = window.copy()
    window.loc[(window["machine"] == 0) & (window["ts"] > now - pd.Timedelta(hours=12)), "vib"] += (
        vibration_step
    )
    out = model.predict_frame(window)
    return out[out["machine"] == 0].iloc[0]


def test_an_anomaly_alert_says_what_its_score_means() -> None:
    row = _explained(1.0)  # 3 → 4 mm/s while the fleet's vibration varies by 0.05

    assert (row["failure_mode"], row["alert"]) == ("anomaly", True)
    assert row["explanation"] == (
        f"no failure history yet: readings unlike its machine type's usual ones (anomaly score "
        f"{row['risk']:.2f} of 1; alerts from {cold_start.THRESHOLD:.2f})"
    )


def test_a_quiet_anomaly_score_says_it_is_below_the_alert() -> None:
    row = _explained(0.0)

    assert (row["failure_mode"], row["alert"]) == ("anomaly", False)
    assert row["explanation"] == (
        f"no failure history yet: readings not far enough to alert from its machine type's usual ones "
        f"(anomaly score {row['risk']:.2f} of 1; alerts from {cold_start.THRESHOLD:.2f})"
    )
