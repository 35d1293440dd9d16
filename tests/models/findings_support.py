"""The simulated fleets the findings tests share: a reviewed run, a store whose machines sent until now."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, select

from fleet import labels, registry
from fleet.tables import Machine
from models import versions as model_versions
from models.training import TrainingReport
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import SimulationRun, simulate
from tests.api.support import World, build_world
from tests.models.fleet_support import PUMP


def reviewed_run() -> tuple[SimulationRun, pd.Timestamp]:
    """The run and the split: the review's alerts open before it, its models train on what came before."""
    # 40 machines, not 60: every outcome the tests check still occurs (no-fault and wear-seen findings,
    # alerts past the split, alerts of several review models), while 60 machines' review models made five
    # times the alerting predictions, each through the alert workflow: most of these tests' CPU.
    config = FleetConfig(machines=40, days=60, seed=7, step_seconds=3600)
    return simulate(config), pd.Timestamp(config.start) + pd.Timedelta(days=45)


def backfilled_world(database_url: str, now: datetime) -> World:
    """A world whose 12 simulated machines (many failing) sent 20 days of hourly readings up to `now`."""
    world = build_world(database_url)
    config = FleetConfig(
        machines=12,
        days=20,
        seed=5,
        step_seconds=3600,
        failure_rate=20.0,
        tenants=("north", "south"),
        start=now - timedelta(days=20),
    )
    backfill(simulate(config), world.engine)
    return world


def labelled_rows(engine: Engine, *reports: TrainingReport) -> list[dict]:
    """The labelled rows (positive, negative) each training run's pump version counted."""
    metrics = {v.version: v.metrics for v in model_versions.list_versions(engine)}
    return [metrics[report.versions[PUMP]]["labelled_rows"] for report in reports]


def pooled_pump_without_labels(engine: Engine, since: datetime, until: datetime) -> int:
    """A pump of a customer that pools its data with no label between the two times: its rows there are
    known negatives."""
    with engine.connect() as conn:
        pooled = registry.customers_granting(conn, "product_improvement")
        pumps = conn.execute(
            select(Machine.id).where(Machine.machine_type == PUMP, Machine.customer_id.in_(pooled))
        ).scalars()
        stored = labels.read(conn)
    near = stored[(stored["ts"] >= pd.Timestamp(since)) & (stored["ts"] <= pd.Timestamp(until))]
    return next(m for m in pumps if m not in set(near["machine_id"]))
