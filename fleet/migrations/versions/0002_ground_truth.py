"""ground truth of simulated fleets: runs, failure and maintenance events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:02:11.318544
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "simulation_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_simulation_runs")),
        sa.UniqueConstraint("digest", name=op.f("uq_simulation_runs_digest")),
    )
    op.create_table(
        "failure_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mode", sa.String(length=64), nullable=False),
        sa.Column("has_precursor", sa.Boolean(), nullable=False),
        sa.Column("onset", sa.DateTime(timezone=True), nullable=True),
        sa.Column("repaired", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_failure_events_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"],
            ["machines.id"],
            name=op.f("fk_failure_events_machine_id_machines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["simulation_runs.id"],
            name=op.f("fk_failure_events_run_id_simulation_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failure_events")),
        sa.UniqueConstraint("run_id", "machine_id", "ts", name=op.f("uq_failure_events_run_id")),
    )
    with op.batch_alter_table("failure_events", schema=None) as batch_op:
        batch_op.create_index("ix_failure_events_machine_ts", ["machine_id", "ts"], unique=False)

    op.create_table(
        "maintenance_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("found_mode", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_maintenance_events_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"],
            ["machines.id"],
            name=op.f("fk_maintenance_events_machine_id_machines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["simulation_runs.id"],
            name=op.f("fk_maintenance_events_run_id_simulation_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_events")),
        sa.UniqueConstraint("run_id", "machine_id", "ts", "kind", name=op.f("uq_maintenance_events_run_id")),
    )
    with op.batch_alter_table("maintenance_events", schema=None) as batch_op:
        batch_op.create_index("ix_maintenance_events_machine_ts", ["machine_id", "ts"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("maintenance_events", schema=None) as batch_op:
        batch_op.drop_index("ix_maintenance_events_machine_ts")

    op.drop_table("maintenance_events")
    with op.batch_alter_table("failure_events", schema=None) as batch_op:
        batch_op.drop_index("ix_failure_events_machine_ts")

    op.drop_table("failure_events")
    op.drop_table("simulation_runs")
