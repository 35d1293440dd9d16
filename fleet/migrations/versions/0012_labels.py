"""labels: one store of labelled events (simulator, import, finding); the simulator's ground truth moves in

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 10:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_LABELS = (
    "customer_id, machine_id, ts, kind, component, mode, source, ref, activity, precursor, onset, "
    '"end", created_at'
)
# SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT (else it parses ON as a join).
_MOVE_FAILURES = f"""
INSERT INTO labels ({_LABELS})
SELECT f.customer_id, f.machine_id, f.ts, 'failure', f.mode, f.mode, 'simulator',
       'run:' || CAST(f.run_id AS VARCHAR(20)), NULL, f.has_precursor, f.onset, f.repaired, r.created_at
FROM failure_events f JOIN simulation_runs r ON r.id = f.run_id
WHERE 1 = 1
ON CONFLICT DO NOTHING
"""
_MOVE_MAINTENANCE = f"""
INSERT INTO labels ({_LABELS})
SELECT m.customer_id, m.machine_id, m.ts,
       CASE WHEN m.found_mode IS NULL THEN 'maintenance' ELSE 'replacement' END,
       COALESCE(m.found_mode, ''), m.found_mode, 'simulator',
       'run:' || CAST(m.run_id AS VARCHAR(20)), m.kind, NULL, NULL, m."end", r.created_at
FROM maintenance_events m JOIN simulation_runs r ON r.id = m.run_id
WHERE 1 = 1
ON CONFLICT DO NOTHING
"""
_SIMULATED = "source = 'simulator' AND ref LIKE 'run:%'"
_RUN_ID = "CAST(SUBSTR(ref, 5) AS INTEGER)"


def _owner_keys(table: str) -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            [f"{owner}_id"], [f"{owner}s.id"], name=f"fk_{table}_{owner}_id_{owner}s", ondelete="CASCADE"
        )
        for owner in ("customer", "machine")
    ]


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("component", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=300), nullable=False),
        sa.Column("activity", sa.String(length=64), nullable=True),
        sa.Column("precursor", sa.Boolean(), nullable=True),
        sa.Column("onset", _TS, nullable=True),
        sa.Column("end", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_labels_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_labels_machine_id_machines"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("machine_id", "ts", "kind", "component", name=op.f("uq_labels_machine_id")),
    )
    op.create_index("ix_labels_customer_id", "labels", ["customer_id"], unique=False)
    op.execute(_MOVE_FAILURES)
    op.execute(_MOVE_MAINTENANCE)
    op.drop_table("maintenance_events")
    op.drop_table("failure_events")


def _event_table(name: str, *columns: sa.Column, key: list[str]) -> None:
    op.create_table(
        name,
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("ts", _TS, nullable=False),
        *columns,
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f(f"fk_{name}_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f(f"fk_{name}_machine_id_machines"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["simulation_runs.id"],
            name=op.f(f"fk_{name}_run_id_simulation_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint(*key, name=op.f(f"uq_{name}_run_id")),
    )
    op.create_index(f"ix_{name}_machine_ts", name, ["machine_id", "ts"], unique=False)


def downgrade() -> None:
    """Back to the run-bound tables; only the simulator's labels fit them (imports and findings are lost)."""
    _event_table(
        "failure_events",
        sa.Column("mode", sa.String(length=64), nullable=False),
        sa.Column("has_precursor", sa.Boolean(), nullable=False),
        sa.Column("onset", _TS, nullable=True),
        sa.Column("repaired", _TS, nullable=True),
        key=["run_id", "machine_id", "ts"],
    )
    _event_table(
        "maintenance_events",
        sa.Column("end", _TS, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("found_mode", sa.String(length=64), nullable=True),
        key=["run_id", "machine_id", "ts", "kind"],
    )
    op.execute(
        "INSERT INTO failure_events "
        "(run_id, customer_id, machine_id, ts, mode, has_precursor, onset, repaired) "
        f"SELECT {_RUN_ID}, customer_id, machine_id, ts, COALESCE(mode, component), "
        f"COALESCE(precursor, true), onset, \"end\" FROM labels WHERE kind = 'failure' AND {_SIMULATED}"
    )
    op.execute(
        'INSERT INTO maintenance_events (run_id, customer_id, machine_id, ts, "end", kind, found_mode) '
        f'SELECT {_RUN_ID}, customer_id, machine_id, ts, COALESCE("end", ts), '
        "COALESCE(activity, 'preventive'), CASE WHEN kind = 'replacement' THEN mode END FROM labels "
        f"WHERE kind IN ('replacement', 'maintenance') AND {_SIMULATED}"
    )
    op.drop_index("ix_labels_customer_id", table_name="labels")
    op.drop_table("labels")
