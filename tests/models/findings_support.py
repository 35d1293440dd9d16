"""The simulated run the findings-review tests share: 40 machines over 60 days, reviewed up to day 45."""

from __future__ import annotations

import pandas as pd

from simulators.config import FleetConfig
from simulators.engine import SimulationRun, simulate


def reviewed_run() -> tuple[SimulationRun, pd.Timestamp]:
    """The run and the split: the review's alerts open before it, its models train on what came before."""
    # 40 machines, not 60: every outcome the tests check still occurs (no-fault and wear-seen findings,
    # alerts past the split, alerts of several review models), while 60 machines' review models made five
    # times the alerting predictions, each through the alert workflow: most of these tests' CPU.
    config = FleetConfig(machines=40, days=60, seed=7, step_seconds=3600)
    return simulate(config), pd.Timestamp(config.start) + pd.Timedelta(days=45)
