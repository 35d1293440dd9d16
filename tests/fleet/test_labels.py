"""The label store on SQLite and PostgreSQL: the migration moves old ground truth in; idempotent writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, func, select

from fleet import errors, labels, migrate, registration
from fleet.db import make_engine
from fleet.tables import Label

T0 = datetime(2026, 3, 1, 6, tzinfo=UTC)


def _old_ground_truth(engine) -> None:  # noqa: ANN001
    """Rows as revision 0011 stored them: a run, a failure and two visits (one found wear)."""
    meta = MetaData()
    meta.reflect(engine)
    t = meta.tables
    with engine.begin() as conn:
        conn.execute(
            t["customers"].insert(),
            {"id": 1, "tenant": "acme", "name": "Acme", "auto_registered": False, "created_at": T0},
        )
        conn.execute(
            t["machines"].insert(),
            [
                {
                    "id": i,
                    "customer_id": 1,
                    "code": f"m{i}",
                    "machine_type": "pump",
                    "contract_tier": "basic",
                    "auto_registered": False,
                    "created_at": T0,
                }
                for i in (1, 2)
            ],
        )
        conn.execute(
            t["simulation_runs"].insert(),
            {"id": 7, "kind": "fleet", "seed": 3, "config": {}, "digest": "d" * 64, "created_at": T0},
        )
        conn.execute(
            t["failure_events"].insert(),
            {
                "run_id": 7,
                "customer_id": 1,
                "machine_id": 1,
                "ts": T0 + timedelta(days=3),
                "mode": "bearing_wear",
                "has_precursor": True,
                "onset": T0,
                "repaired": T0 + timedelta(days=3, hours=8),
            },
        )
        conn.execute(
            t["maintenance_events"].insert(),
            [
                {
                    "run_id": 7,
                    "customer_id": 1,
                    "machine_id": 2,
                    "ts": T0 + timedelta(days=1),
                    "end": T0 + timedelta(days=1, hours=2),
                    "kind": "preventive",
                    "found_mode": "seal_leak",
                },
                {
                    "run_id": 7,
                    "customer_id": 1,
                    "machine_id": 1,
                    "ts": T0 + timedelta(days=3),
                    "end": T0 + timedelta(days=3, hours=8),
                    "kind": "repair",
                    "found_mode": None,
                },
            ],
        )


def test_migration_moves_the_simulators_ground_truth_into_labels_and_back(database_url):
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine, "0011")
        _old_ground_truth(engine)
        migrate.upgrade(engine, "0012")  # 0030 renames parts: tests/simulators/test_label_parts_migration
        with engine.connect() as conn:
            moved = labels.read(conn)
        cols = moved[["machine", "ts", "kind", "component", "mode", "source", "ref", "activity"]]
        assert cols.astype(object).where(cols.notna(), None).to_dict("records") == [
            {
                "machine": "m2",
                "ts": T0 + timedelta(days=1),
                "kind": "replacement",
                "component": "seal_leak",
                "mode": "seal_leak",
                "source": "simulator",
                "ref": "run:7",
                "activity": "preventive",
            },
            {
                "machine": "m1",
                "ts": T0 + timedelta(days=3),
                "kind": "failure",
                "component": "bearing_wear",
                "mode": "bearing_wear",
                "source": "simulator",
                "ref": "run:7",
                "activity": None,
            },
            {
                "machine": "m1",
                "ts": T0 + timedelta(days=3),
                "kind": "maintenance",
                "component": "",
                "mode": None,
                "source": "simulator",
                "ref": "run:7",
                "activity": "repair",
            },
        ]
        failure = moved[moved["kind"] == "failure"].iloc[0]
        assert failure["precursor"] and failure["onset"] == T0
        assert failure["end"] == T0 + timedelta(days=3, hours=8)
        migrate.downgrade(engine, "0011")
        meta = MetaData()
        meta.reflect(engine)
        assert "labels" not in meta.tables
        with engine.connect() as conn:
            back = conn.execute(
                select(meta.tables["failure_events"].c.mode, meta.tables["failure_events"].c.run_id)
            )
            assert back.all() == [("bearing_wear", 7)]
            visits = meta.tables["maintenance_events"]
            assert sorted(conn.execute(select(visits.c.kind, visits.c.found_mode)).all(), key=str) == [
                ("preventive", "seal_leak"),
                ("repair", None),
            ]
    finally:
        engine.dispose()


def test_writes_are_idempotent_on_the_natural_key(engine):
    ids = registration.register_machines(engine=engine, machines=[{"tenant": "acme", "machine": "m1"}])
    customer_id, machine_id = ids[("acme", "m1")]
    row = {
        "customer_id": customer_id,
        "machine_id": machine_id,
        "ts": T0,
        "kind": "failure",
        "component": "comp1",
        "source": "import",
        "ref": "failures.csv:2",
    }
    with engine.begin() as conn:
        assert labels.write(conn, [row, row | {"component": "comp2"}]) == 2
    with engine.begin() as conn:
        # Same key from another source is the same event: not stored twice.
        assert labels.write(conn, [row | {"source": "finding", "ref": "alert:1"}]) == 0
        assert labels.stored_keys(
            conn, [(machine_id, T0, "failure", "comp1"), (machine_id, T0, "failure", "x")]
        ) == {(machine_id, T0, "failure", "comp1")}
        assert conn.scalar(select(func.count()).select_from(Label)) == 2
        with pytest.raises(errors.InvalidInput, match="label kind"):
            labels.write(conn, [row | {"kind": "broken"}])
