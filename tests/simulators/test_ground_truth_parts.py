"""A simulation run's labels name the component its machine's type gives each failure mode."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from fleet import audit, labels
from models import event_features
from simulators import ground_truth
from simulators import machine_types as simulated_types
from simulators.config import FleetConfig
from simulators.engine import simulate
from simulators.registration import register_machines
from tests.simulators.store import declared_parts

CONFIG = FleetConfig(machines=12, days=20, seed=5, step_seconds=3600, failure_rate=40.0)


def _stored_run(engine) -> pd.DataFrame:  # noqa: ANN001
    """A simulated fleet's labels, written after its types were applied (as `simulate fleet` does)."""
    simulated_types.apply_to_store(engine, audit.Operator("test"))
    run = simulate(CONFIG)
    run_id = ground_truth.write_run(engine, run, register_machines(engine=engine, machines=run.machines))
    with engine.connect() as conn:
        return labels.read(conn, ref=ground_truth.run_ref(run_id))


def test_each_label_names_a_component_its_machines_type_declares_for_the_mode(engine):
    stored = _stored_run(engine)
    worn = stored[stored["kind"].isin(("failure", "replacement"))]
    assert len(worn) >= 5 and (stored["kind"] == "replacement").any()
    with engine.connect() as conn:
        assert worn["component"].tolist() == declared_parts(conn, worn)
    assert set(stored.loc[stored["kind"] == "maintenance", "component"]) == {""}


def test_hours_since_a_components_last_visit_count_a_simulated_replacement(engine):
    stored = _stored_run(engine)
    visit = stored[stored["kind"] == "replacement"].iloc[0]
    machine_id = int(visit["machine_id"])
    panel = pd.DataFrame({"machine": [machine_id], "ts": [visit["ts"] + timedelta(hours=2)]})
    with engine.connect() as conn:
        column = f"ev:replaced:{declared_parts(conn, stored.loc[[visit.name]])[0]}"
        assert column in event_features.columns_of_type(conn, visit["machine_type"])
        hours = event_features.add(conn, panel, [column])[column]
    assert hours.tolist() == [2.0]
