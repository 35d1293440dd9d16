"""Migration 0030 (SQLite, PostgreSQL): stored simulator labels name the part their mode belongs to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleet import labels, machine_types, migrate, registration
from fleet.db import make_engine
from simulators.machine_types import TYPES_FILE

T0 = datetime(2026, 3, 1, 6, tzinfo=UTC)
COLUMNS = ["machine", "kind", "component", "mode", "source"]


def _labels_as_0029_stored_them(engine) -> None:  # noqa: ANN001
    """A pump's simulated failure, found wear and repair, a C-MAPSS engine's failure, imported failures."""
    machine_types.apply_file(engine=engine, path=TYPES_FILE)
    ids = registration.register_machines(
        engine=engine,
        machines=[
            {"tenant": "acme", "machine": "pump-1", "machine_type": "centrifugal_pump"},
            {"tenant": "acme", "machine": "pump-2", "machine_type": "centrifugal_pump"},
            {"tenant": "lab", "machine": "engine-1", "machine_type": "turbofan"},
        ],
    )

    def label(machine: str, hours: int, kind: str, component: str, mode: str | None, source: str) -> dict:
        customer_id, machine_id = ids[("lab" if machine == "engine-1" else "acme", machine)]
        ts = T0 + timedelta(hours=hours)
        return {"customer_id": customer_id, "machine_id": machine_id, "ts": ts, "kind": kind,
                "component": component, "mode": mode, "source": source, "ref": f"{source}:1"}  # fmt: skip

    with engine.begin() as conn:
        labels.write(
            conn,
            [
                label("pump-1", 1, "replacement", "seal_leak", "seal_leak", "simulator"),
                label("pump-1", 5, "failure", "bearing_wear", "bearing_wear", "simulator"),
                label("pump-1", 5, "maintenance", "", None, "simulator"),
                label("engine-1", 7, "failure", "hpc_degradation", "hpc_degradation", "simulator"),
                # pump-2's failure at 9 h was imported naming its bearing: the simulator's keeps its old name.
                label("pump-2", 9, "failure", "bearing", "bearing_wear", "import"),
                label("pump-2", 9, "failure", "bearing_wear", "bearing_wear", "simulator"),
                label("pump-2", 11, "failure", "impeller_fouling", "impeller_fouling", "import"),
            ],
        )


def _stored(engine) -> list[list]:  # noqa: ANN001
    with engine.connect() as conn:
        stored = labels.read(conn)[COLUMNS].astype(object)
    return stored.where(stored.notna(), None).values.tolist()


def test_migration_0030_names_the_part_of_stored_simulator_labels_and_the_downgrade_the_mode(database_url):
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine, "0029")
        _labels_as_0029_stored_them(engine)
        before = _stored(engine)
        migrate.upgrade(engine)
        assert _stored(engine) == [
            ["pump-1", "replacement", "seal", "seal_leak", "simulator"],
            ["pump-1", "failure", "bearing", "bearing_wear", "simulator"],
            ["pump-1", "maintenance", "", None, "simulator"],
            ["engine-1", "failure", "", "hpc_degradation", "simulator"],  # turbofan: no types file defines it
            ["pump-2", "failure", "bearing", "bearing_wear", "import"],
            ["pump-2", "failure", "bearing_wear", "bearing_wear", "simulator"],
            ["pump-2", "failure", "impeller_fouling", "impeller_fouling", "import"],  # not the simulator's
        ]
        migrate.downgrade(engine, "0029")
        assert _stored(engine) == before
    finally:
        engine.dispose()
