"""Alerts against ground truth, and the backtest report on a small fleet."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models import episodes
from models.evaluate import backtest, write_report
from tests.models.fleet_support import FAST, fleet

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _hours(*hs: float) -> list[pd.Timestamp]:
    return [T0 + pd.Timedelta(hours=h) for h in hs]


def test_alert_episodes_precision_recall_and_lead() -> None:
    ts = pd.Series(_hours(*range(0, 400)))
    risk = np.zeros(400)
    risk[100:140] = 0.9  # one alert, 100 h before the failure at 200 h
    risk[300:302] = 0.9  # a false alarm
    alerts = episodes.alert_starts(np.array(["m1"] * 400), ts, risk, 0.5)
    assert list(alerts["start"]) == _hours(100, 300)
    failures = pd.DataFrame({"machine": ["m1", "m2"], "ts": _hours(200, 50), "has_precursor": [True, False]})
    stats = episodes.alert_metrics(alerts, failures, None, horizon_hours=168, machine_months=2.0)
    assert stats["precision"] == 0.5 and stats["false_alarms_per_machine_month"] == 0.5
    assert stats["precursor"] == {
        "failures": 1,
        "detected": 1,
        "detected_min_lead": 1,
        "recall_min_lead": 1.0,
        "recall_any_lead": 1.0,
        "median_lead_hours": 100.0,
    }
    assert stats["sudden"]["recall_min_lead"] == 0.0


def test_backtest_on_a_small_fleet_writes_a_report(tmp_path) -> None:
    run = fleet(40, 30.0)
    panel = run.telemetry()
    split = pd.Timestamp(run.config.start) + pd.Timedelta(days=20)
    result = backtest(panel, run.failures, run.maintenance, split=split, **FAST)
    assert set(result["types"]) == {"centrifugal_pump", "air_compressor", "cnc_spindle"}
    pooled = result["pooled"]
    assert 0.0 <= pooled["brier"] <= 1.0
    assert pooled["machine_months"] > 0
    path = write_report(result, tmp_path / "report")
    text = path.read_text()
    assert "recall, alerted ≥ 24 h ahead" in text and "matplotlib" not in text
    assert (tmp_path / "report" / "backtest.json").exists()
