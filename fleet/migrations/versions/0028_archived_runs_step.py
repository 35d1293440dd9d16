"""archived runs with a step: a run of archived seqs is seq_lo, seq_lo + seq_step, … seq_hi

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05 20:10:00

Telemetry imported without a seq column has the time in milliseconds as its seq, so an hourly import's seqs
step by 3,600,000: one run per message until now. Existing runs get step 1 and mean what they meant. A run
may now span seqs it does not hold (a message never received), and such a seq archived later makes a run
inside it: the insert trigger looks at every run ending at or after the seq, not only the one starting
nearest below it. The downgrade splits stepped runs into one run per seq, which 0015's trigger reads right.
"""

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

_V15 = importlib.import_module("fleet.migrations.versions.0015_lifecycle")
_ARCHIVED = """EXISTS (SELECT 1 FROM archived_ranges WHERE machine_id = NEW.machine_id AND seq_hi >= NEW.seq
                AND seq_lo <= NEW.seq AND (NEW.seq - seq_lo) % seq_step = 0)"""
_SQLITE_TRIGGER = f"""CREATE TRIGGER telemetry_skip_archived BEFORE INSERT ON telemetry
   WHEN {_ARCHIVED}
   BEGIN SELECT RAISE(IGNORE); END"""
_PG_FUNCTION = f"""CREATE OR REPLACE FUNCTION telemetry_skip_archived() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF {_ARCHIVED} THEN
       RETURN NULL;
     END IF;
     RETURN NEW;
   END $$"""
# Every seq of a stepped run but its first, as a run of its own (a recursive query: SQLite has no
# generate_series).
_SPLIT = """WITH RECURSIVE later (machine_id, seq, seq_hi, seq_step, file_id) AS (
     SELECT machine_id, seq_lo + seq_step, seq_hi, seq_step, file_id FROM archived_ranges
     WHERE seq_step > 1 AND seq_hi > seq_lo
     UNION ALL
     SELECT machine_id, seq + seq_step, seq_hi, seq_step, file_id FROM later WHERE seq < seq_hi
   )
   INSERT INTO archived_ranges (machine_id, seq_lo, seq_hi, seq_step, file_id)
   SELECT machine_id, seq, seq, 1, file_id FROM later"""


def upgrade() -> None:
    # A column with a default and an index: SQLite adds both in place (no table rebuild, which the trigger
    # reading the table would refuse).
    op.add_column(
        "archived_ranges", sa.Column("seq_step", sa.BigInteger(), nullable=False, server_default=sa.text("1"))
    )
    op.create_index("ix_archived_ranges_machine_id_seq_hi", "archived_ranges", ["machine_id", "seq_hi"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER telemetry_skip_archived")
        op.execute(_SQLITE_TRIGGER)
    else:
        op.execute(_PG_FUNCTION)  # the trigger calls the function by name


def downgrade() -> None:
    op.execute(_SPLIT)
    op.execute("UPDATE archived_ranges SET seq_hi = seq_lo, seq_step = 1 WHERE seq_step > 1")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER telemetry_skip_archived")  # SQLite's table rebuild below must not see it
    with op.batch_alter_table("archived_ranges") as batch:
        batch.drop_index("ix_archived_ranges_machine_id_seq_hi")
        batch.drop_column("seq_step")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_V15._SQLITE_TRIGGERS[1])
    else:
        op.execute(_V15._PG_TRIGGERS[2].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
