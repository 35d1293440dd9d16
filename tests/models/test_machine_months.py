"""False alarms per machine-month count the months each machine actually sent, not the fleet's span."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.fleet_model import FleetModel
from models.labels import make_targets
from models.training import choose_threshold
from tests.models.fleet_support import FAST, fleet, pump_panel


def test_a_fleet_that_grew_over_time_counts_the_months_its_machines_sent() -> None:
    # Thirty of forty pumps joined twelve days before the end of the thirty days. Machine-months were the
    # machines times the whole panel's span, though most pumps sent for twelve days: the training alerts'
    # false-alarm rate read 0.95 instead of 1.36 per machine-month, and the threshold it bounds
    # (SERVICECAST_MODEL_MAX_FALSE_ALARMS) opened more false alarms than that in production.
    run = fleet()
    panel = pump_panel().copy()
    ts = pd.to_datetime(panel["ts"], utc=True)
    machines = panel["machine"].astype(str)
    late = machines.isin(sorted(machines.unique())[10:]).to_numpy()
    panel = panel[~late | (ts >= ts.max() - pd.Timedelta(days=12)).to_numpy()].reset_index(drop=True)
    model = FleetModel(**FAST).fit(panel, make_targets(panel, run.failures, run.maintenance))

    _, stats = choose_threshold(
        model, panel, run.failures, run.maintenance, min_precision=0.0, max_false_alarms=np.inf
    )

    seen = np.unique(panel["machine"].astype(str).to_numpy()[~np.isnan(model.classifier_.oof_)])
    kept = panel[panel["machine"].astype(str).isin(seen)]
    span = pd.to_datetime(kept["ts"], utc=True).groupby(kept["machine"].astype(str)).agg(["min", "max"])
    months = ((span["max"] - span["min"]).dt.total_seconds() / 86400.0 / 30.0).sum()
    assert stats["false_alarms"] > 0
    assert stats["false_alarms_per_machine_month"] == pytest.approx(stats["false_alarms"] / months)
