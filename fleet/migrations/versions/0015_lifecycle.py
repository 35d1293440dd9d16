"""lifecycle: telemetry rollups with their dirty log, the Parquet archive's files and archived keys, erasures

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 13:10:00

Two triggers keep the write path unchanged: one logs the (machine, hour) of every stored row as dirty for
the rollup refresh (only rows really inserted fire it), one skips a row whose key is archived already, so a
re-sent message counts as a duplicate after its row moved to Parquet.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")

_SQLITE_TRIGGERS = (
    # SQLite's DATETIME text is 'YYYY-MM-DD HH:MM:SS.ffffff': the hour is its first 13 characters.
    """CREATE TRIGGER telemetry_rollup_dirty AFTER INSERT ON telemetry BEGIN
         INSERT INTO rollup_dirty (machine_id, customer_id, hour)
         VALUES (NEW.machine_id, NEW.customer_id, substr(NEW.ts, 1, 13) || ':00:00.000000')
         ON CONFLICT DO NOTHING;
       END""",
    """CREATE TRIGGER telemetry_skip_archived BEFORE INSERT ON telemetry
       WHEN (SELECT seq_hi FROM archived_ranges WHERE machine_id = NEW.machine_id AND seq_lo <= NEW.seq
             ORDER BY seq_lo DESC LIMIT 1) >= NEW.seq
       BEGIN SELECT RAISE(IGNORE); END""",
)
_PG_TRIGGERS = (
    """CREATE FUNCTION telemetry_rollup_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         INSERT INTO rollup_dirty (machine_id, customer_id, hour)
         SELECT DISTINCT machine_id, customer_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
         FROM new_rows
         -- An update, not DO NOTHING: it locks the mark, so a refresh deleting it waits for this commit.
         ON CONFLICT (machine_id, hour) DO UPDATE SET customer_id = EXCLUDED.customer_id;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER telemetry_rollup_dirty AFTER INSERT ON telemetry REFERENCING NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION telemetry_rollup_dirty()""",
    """CREATE FUNCTION telemetry_skip_archived() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF (SELECT seq_hi FROM archived_ranges WHERE machine_id = NEW.machine_id AND seq_lo <= NEW.seq
             ORDER BY seq_lo DESC LIMIT 1) >= NEW.seq THEN
           RETURN NULL;
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER telemetry_skip_archived BEFORE INSERT ON telemetry
       FOR EACH ROW EXECUTE FUNCTION telemetry_skip_archived()""",
)


def _owner_columns() -> list[sa.Column]:
    return [
        sa.Column(
            "machine_id", sa.Integer(), sa.ForeignKey("machines.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "customer_id", sa.Integer(), sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "telemetry_rollups",
        *_owner_columns(),
        sa.Column("width_s", sa.Integer(), nullable=False),
        sa.Column("sensor", sa.String(128), nullable=False),
        sa.Column("bucket", _TS, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float(), nullable=True),
        sa.Column("lo", sa.Float(), nullable=True),
        sa.Column("hi", sa.Float(), nullable=True),
        sa.Column("last_ts", _TS, nullable=False),
        sa.Column("last", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("machine_id", "width_s", "bucket", "sensor", name="pk_telemetry_rollups"),
    )
    op.create_index("ix_telemetry_rollups_customer_id", "telemetry_rollups", ["customer_id"])
    op.create_table(
        "rollup_dirty",
        *_owner_columns(),
        sa.Column("hour", _TS, nullable=False),
        sa.PrimaryKeyConstraint("machine_id", "hour", name="pk_rollup_dirty"),
    )
    op.create_table(
        "archive_files",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "customer_id", sa.Integer(), sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("readings", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("ts_min", _TS, nullable=False),
        sa.Column("ts_max", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("path", name="uq_archive_files_path"),
    )
    op.create_index("ix_archive_files_customer_id", "archive_files", ["customer_id", "ts_min"])
    op.create_table(
        "archived_ranges",
        sa.Column(
            "machine_id", sa.Integer(), sa.ForeignKey("machines.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("seq_lo", sa.BigInteger(), nullable=False),
        sa.Column("seq_hi", sa.BigInteger(), nullable=False),
        sa.Column(
            "file_id", _ID, sa.ForeignKey("archive_files.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.PrimaryKeyConstraint("machine_id", "seq_lo", name="pk_archived_ranges"),
    )
    op.create_table(
        "erasure_receipts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("counts", _JSON, nullable=False),
        sa.Column("kept", _JSON, nullable=False),
        sa.UniqueConstraint("pseudonym", name="uq_erasure_receipts_pseudonym"),
    )
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("retrain_reason", sa.Text(), nullable=True))
    bind = op.get_bind()
    # Rows stored before this revision have no dirty mark: log every (machine, hour) they cover once.
    hour = (
        "substr(ts, 1, 13) || ':00:00.000000'"
        if bind.dialect.name == "sqlite"
        else "date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    )
    op.execute(
        f"INSERT INTO rollup_dirty (machine_id, customer_id, hour) "
        f"SELECT DISTINCT machine_id, customer_id, {hour} FROM telemetry"
    )
    for statement in _SQLITE_TRIGGERS if bind.dialect.name == "sqlite" else _PG_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER telemetry_skip_archived")
        op.execute("DROP TRIGGER telemetry_rollup_dirty")
    else:
        op.execute("DROP TRIGGER telemetry_skip_archived ON telemetry")
        op.execute("DROP TRIGGER telemetry_rollup_dirty ON telemetry")
        op.execute("DROP FUNCTION telemetry_skip_archived()")
        op.execute("DROP FUNCTION telemetry_rollup_dirty()")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("retrain_reason")
    for table in ("erasure_receipts", "archived_ranges", "archive_files", "rollup_dirty"):
        op.drop_table(table)
    op.drop_table("telemetry_rollups")
