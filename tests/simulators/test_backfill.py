"""Backfill into SQLite and PostgreSQL: every row and reading of the panel, idempotent, with ground truth."""

from __future__ import annotations

import threading

import pandas as pd
from sqlalchemy import delete, func, inspect, select

from fleet import migrate, registry
from fleet.tables import Customer, DataUseGrant, Machine, Site, Telemetry
from simulators import ground_truth
from simulators.backfill import _prefetch, backfill
from simulators.config import FleetConfig
from simulators.engine import simulate
from tests import services
from tests.simulators.store import expected_telemetry, readings_in, stored_telemetry

CONFIG = FleetConfig(
    machines=40,
    days=2,
    seed=11,
    step_seconds=300,
    failure_rate=150.0,
    sudden_share=0.5,
    maintenance_interval_days=8.0,
    fault_rate=1.0,
)


def _count(engine, table) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(table))


def test_backfill_stores_the_panel_once_with_its_ground_truth(engine):
    run = simulate(CONFIG)
    panel = run.telemetry()
    assert len(run.failures) >= 10 and run.failures["has_precursor"].any()
    assert run.maintenance["found_mode"].notna().sum() >= 3

    report = backfill(run, engine, chunk_machines=16, chunk_steps=200)
    assert report.rows == report.stored == len(panel) == 40 * 576
    assert report.readings == readings_in(panel)
    assert stored_telemetry(engine) == expected_telemetry(panel)

    machines = {m.code: m for _, m in registry.list_machines(engine=engine)}
    assert len(machines) == 40 and _count(engine, Site) == 6 and _count(engine, Customer) == 3
    first = run.machines.iloc[0]
    assert machines[first["machine"]].machine_type == first["machine_type"]
    assert machines[first["machine"]].serial == first["serial"]
    assert machines[first["machine"]].contract_tier == first["contract_tier"]
    assert machines[first["machine"]].installed == first["installed"].date()

    failures = ground_truth.read_failures(engine, report.run_id)
    pd.testing.assert_frame_equal(failures, run.failures, check_dtype=False)
    maintenance = ground_truth.read_maintenance(engine, report.run_id)
    expected = run.maintenance.sort_values(["ts", "machine", "kind"], ignore_index=True)
    pd.testing.assert_frame_equal(maintenance, expected, check_dtype=False)
    runs = ground_truth.list_runs(engine)
    assert runs["kind"].tolist() == ["fleet"] and runs["seed"].tolist() == [11]
    assert ground_truth.fleet_config(runs["config"][0]) == CONFIG

    again = backfill(run, engine, chunk_machines=16, chunk_steps=200)
    assert again.stored == 0 and again.rows == len(panel) and again.run_id == report.run_id
    assert _count(engine, Telemetry) == len(panel)
    assert len(ground_truth.read_failures(engine, report.run_id)) == len(run.failures)
    # service for each of the 3 customers, product_improvement for all but the last (simulated_purposes)
    assert _count(engine, DataUseGrant) == 3 + 2 and _count(engine, Machine) == 40


def test_backfill_fills_gaps_left_by_an_interrupted_run(engine):
    run = simulate(CONFIG)
    backfill(run, engine, chunk_machines=40, chunk_steps=288)
    with engine.begin() as conn:
        conn.execute(delete(Telemetry).where(Telemetry.seq.in_([5, 300, 576])))
    assert _count(engine, Telemetry) == 40 * 573
    report = backfill(run, engine, chunk_machines=40, chunk_steps=288)
    assert report.stored == 40 * 3
    assert stored_telemetry(engine) == expected_telemetry(run.telemetry())


def test_ground_truth_tables_match_the_migrations(database_url, engine):
    with engine.connect() as conn:
        diff = services.schema_differences(conn)
    assert diff == [], f"tables and migrations disagree: {diff}"
    migrate.downgrade(engine, "0001")
    tables = set(inspect(engine).get_table_names())
    assert "telemetry" in tables and not {"simulation_runs", "labels"} & tables
    migrate.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"simulation_runs", "labels"} <= tables and not {"failure_events", "maintenance_events"} & tables


def test_a_consumer_that_stops_early_leaves_no_producer_waiting_on_the_full_queue():
    # Every chunk is built and the queue is full: the producer then waits to hand over its end marker.
    # A write that fails (or Ctrl-C) closes the consumer; the producer must not wait for it forever.
    built = threading.Event()

    def chunks():
        yield from range(3)
        built.set()

    stream = _prefetch(chunks(), depth=2)
    assert next(stream) == 0
    assert built.wait(15), "the producer did not build every chunk"
    producer = next(t for t in threading.enumerate() if t.name == "servicecast-backfill")
    stream.close()
    producer.join(15)
    assert not producer.is_alive(), "the producer still waits to hand its end marker to a consumer that left"
