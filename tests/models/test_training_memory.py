"""Bounded training memory: a type above the row budget trains on a seeded sample of whole machines."""

from __future__ import annotations

from sqlalchemy import func, select

from fleet.tables import Machine, Telemetry
from models import versions
from models.training import sample_machines, train_from_store
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate
from tests.models.fleet_support import FAST, PUMP


def test_a_type_above_the_row_budget_trains_on_whole_machines_within_it(engine) -> None:
    backfill(simulate(FleetConfig(machines=12, days=8, seed=2, step_seconds=3600, failure_rate=20)), engine)
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                select(Telemetry.machine_id, func.count())
                .join(Machine, Machine.id == Telemetry.machine_id)
                .where(Machine.machine_type == PUMP)
                .group_by(Telemetry.machine_id)
            ).all()
        )
    budget = sum(sorted(rows.values())[:2]) + 1
    ids = sorted(rows)
    sample = sample_machines(engine, ids, max_rows=budget)
    assert 1 <= len(sample) < len(ids) and sum(rows[m] for m in sample) <= budget
    assert sample == sample_machines(engine, ids, max_rows=budget)  # seeded
    assert sample_machines(engine, ids, max_rows=sum(rows.values())) == ids

    report = train_from_store(engine, machine_type=PUMP, max_type_rows=budget, **FAST)
    (version,) = versions.list_versions(engine, PUMP)
    assert version.version == report.versions[PUMP] and version.metrics["rows"] <= budget
    assert report.peak_rss_mib > 0
