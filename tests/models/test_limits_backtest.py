"""A cold-start backtest checks the OEM limits once per row, warning and alarm together."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from models import limits
from tests.models.fleet_support import pump_panel
from tests.models.test_limits_gaps import PUMP_SPECS, _cold_start


def test_a_cold_start_backtest_checks_the_limits_once_and_alerts_on_the_held_alarm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = copy.deepcopy(_cold_start()).use_types(PUMP_SPECS)
    panel = pump_panel().assign(machine=lambda f: f["machine"].astype(str))
    tail = panel.groupby("machine").tail(2).index
    panel.loc[tail, "vibration_rms_mm_s"] = 9.0  # every pump's latest two hours beyond the alarm limit
    checked = []
    real = limits.beyond

    def beyond(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - limits.beyond's own signature
        checked.append(args[2] if len(args) > 2 else kwargs.get("levels", limits.ALARM))
        return real(*args, **kwargs)

    monkeypatch.setattr(limits, "beyond", beyond)
    risk, _ = model.risk_rows(panel)

    assert checked == [limits.WARNING_AND_ALARM]  # the alarm spells were computed a second time
    latest = panel.groupby("machine").tail(1).index
    np.testing.assert_array_equal(risk[latest], limits.ALARM_RISK)  # held for an hour: the alarm counts
