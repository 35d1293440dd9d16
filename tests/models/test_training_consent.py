"""Training pools only the telemetry of customers that grant `product_improvement`."""

from __future__ import annotations

from sqlalchemy import func, select

from fleet import audit, registry
from fleet.tables import Machine, Telemetry, WorkflowEvent
from models import versions as model_versions
from models.training import TrainingReport, train_from_store
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate
from tests.models.fleet_support import FAST, PUMP


def test_training_leaves_out_the_machines_of_customers_without_product_improvement(engine) -> None:
    config = FleetConfig(
        machines=12, days=20, seed=5, step_seconds=3600, failure_rate=20.0, tenants=("acme", "globex")
    )
    backfill(simulate(config), engine)
    with engine.connect() as conn:
        pooled = registry.customers_granting(conn, "product_improvement")
        pumps = conn.execute(
            select(Machine.id, Machine.customer_id).where(Machine.machine_type == PUMP)
        ).all()
        used = [m for m, c in pumps if c in pooled]
        rows_used = conn.scalar(
            select(func.count()).select_from(Telemetry).where(Telemetry.machine_id.in_(used))
        )
    # The simulator's customers grant it, all but the last one, so that its effect shows.
    assert len(pooled) == 1
    assert 0 < len(used) < len(pumps)

    report = train_from_store(engine, machine_type=PUMP, by=audit.Operator("cli:test"), **FAST)

    assert report.customers_used == 1 and report.customers_left_out == 1
    assert report.machines_used == len(used)
    assert report.machines_left_out == len(pumps) - len(used)
    version = report.versions[PUMP]
    metrics = next(v.metrics for v in model_versions.list_versions(engine) if v.version == version)
    assert metrics["rows"] == rows_used
    with engine.connect() as conn:
        promoted = conn.execute(select(WorkflowEvent).where(WorkflowEvent.action == "promoted")).one()
    assert (promoted.actor, promoted.after) == ("cli:test", {"active": version})


def test_the_pooling_line_counts_one_customer_in_the_singular():
    report = TrainingReport(customers_used=1, machines_used=3, customers_left_out=1, machines_left_out=1)
    assert report.pooling() == (
        "pooled 3 machines of 1 customer that grants product_improvement; "
        "left out 1 machine of 1 customer that does not"
    )
