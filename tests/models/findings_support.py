"""The simulated run the findings-review tests share: 60 machines over 60 days, reviewed up to day 45."""

from __future__ import annotations

import pandas as pd

from simulators.config import FleetConfig
from simulators.engine import SimulationRun, simulate


def reviewed_run() -> tuple[SimulationRun, pd.Timestamp]:
    """The run and the split: the review's alerts open before it, its models train on what came before."""
    config = FleetConfig(machines=60, days=60, seed=7, step_seconds=3600)
    return simulate(config), pd.Timestamp(config.start) + pd.Timedelta(days=45)
