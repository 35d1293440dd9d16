"""The remaining-life 80 % band holds on other machines where it is read: the last 7 days before a failure."""

from __future__ import annotations

import numpy as np

from models import metrics
from models.fleet_model import FleetModel
from models.labels import make_targets
from simulators.config import FleetConfig
from simulators.engine import simulate
from tests.models.fleet_support import PUMP


def _pumps(seed: int):  # noqa: ANN202
    run = simulate(
        FleetConfig(machines=60, days=60, seed=seed, step_seconds=3600, failure_rate=20.0, fault_rate=0.02)
    )
    panel = run.telemetry()
    panel = panel[panel["machine_type"] == PUMP].dropna(axis=1, how="all").reset_index(drop=True)
    return panel, make_targets(panel, run.failures, run.maintenance)


def test_the_band_covers_about_80_percent_of_new_machines_last_week_before_failure() -> None:
    panel, y = _pumps(5)
    model = FleetModel(folds=2, max_rows=20_000, max_iter=30, statsmodels_top=0).fit(panel, y)
    truth, low, high = [], [], []
    for seed in (6, 7):  # fleets the model never saw
        other, z = _pumps(seed)
        table = model.features_.transform(other)
        ttf = z["ttf_h"].to_numpy(dtype=float)
        rows = model.features_.sufficient(table) & (ttf <= model.horizon_hours)
        rows &= z["precursor"].to_numpy() & ~z["caught"].to_numpy()
        _, lo, hi = model.rul_.interval_table(table[rows])
        truth.append(ttf[rows])
        low.append(lo)
        high.append(hi)
    coverage = metrics.coverage(np.concatenate(truth), np.concatenate(low), np.concatenate(high))
    # Calibrated on 14 days before failures from one held-out quarter, the band covered 0.74 here.
    assert 0.77 <= coverage <= 0.9, coverage
