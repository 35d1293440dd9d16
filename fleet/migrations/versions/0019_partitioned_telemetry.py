"""partitioned telemetry: on PostgreSQL telemetry becomes range-partitioned by ts, one partition a week

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 17:30:00

An existing table is converted in this migration's transaction: renamed aside, a partitioned table created
with the same columns, indexes, foreign keys and insert triggers, one partition per week holding rows (and
four weeks ahead) plus a default partition, the rows copied, the old table dropped. SQLite is unchanged.

A partitioned table's unique key must contain `ts`: the primary key becomes (customer_id, machine_id, seq,
ts). The key (customer_id, machine_id, seq) stays unique through the one write path
(`fleet.dialect.insert_new`), which locks each machine it writes and skips a row whose key any partition
holds. The insert triggers of 0015 (rollup dirty log, archived-key skip) are recreated as they were.
"""

import importlib
from datetime import UTC, datetime, timedelta

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_V15 = importlib.import_module("fleet.migrations.versions.0015_lifecycle")
_TRIGGERS = (_V15._PG_TRIGGERS[1], _V15._PG_TRIGGERS[3])  # 0015's two triggers; their functions stay
_WEEK = timedelta(days=7)
_AHEAD_WEEKS = 4
_INDEXES = {  # name -> columns, as migrations 0001 and 0006 made them
    "ix_telemetry_machine_ts": "machine_id, ts",
    "ix_telemetry_machine_received": "machine_id, received_at",
}
_FOREIGN_KEYS = {
    "fk_telemetry_customer_id_customers": "FOREIGN KEY (customer_id) REFERENCES customers(id)",
    "fk_telemetry_machine_id_machines": "FOREIGN KEY (machine_id) REFERENCES machines(id)",
}

# fleet.partitions puts this on a partition while the archive moves it whole: any change shows in the count.
_NOTE_CHANGE = """CREATE FUNCTION telemetry_note_change() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     PERFORM nextval('telemetry_partition_changes');
     RETURN NULL;
   END $$"""


def _partition(name: str, lo: datetime) -> str:
    hi = lo + _WEEK
    bounds = f"FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
    return f"CREATE TABLE {name} PARTITION OF telemetry FOR VALUES {bounds}"


def _set_aside(aside: str, *, primary_key: str, partitioned: bool) -> None:
    """Rename telemetry to `aside` without its triggers, and create an empty telemetry like it."""
    op.execute("DROP TRIGGER telemetry_skip_archived ON telemetry")
    op.execute("DROP TRIGGER telemetry_rollup_dirty ON telemetry")
    op.execute(f"ALTER TABLE telemetry RENAME TO {aside}")
    op.execute(f"ALTER INDEX pk_telemetry RENAME TO pk_{aside}")
    for name in _INDEXES:
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_{aside}")
    by = " PARTITION BY RANGE (ts)" if partitioned else ""
    op.execute(f"CREATE TABLE telemetry (LIKE {aside} INCLUDING DEFAULTS){by}")
    op.execute(f"ALTER TABLE telemetry ADD CONSTRAINT pk_telemetry PRIMARY KEY ({primary_key})")
    for name, definition in _FOREIGN_KEYS.items():
        op.execute(f"ALTER TABLE telemetry ADD CONSTRAINT {name} {definition} ON DELETE CASCADE")
    for name, columns in _INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON telemetry ({columns})")


def _fill_from(aside: str) -> None:
    """Copy the rows set aside, drop that table, then put the triggers on (the rows are logged already)."""
    op.execute(f"INSERT INTO telemetry SELECT * FROM {aside}")
    op.execute(f"DROP TABLE {aside}")  # a partitioned one with its partitions
    for statement in _TRIGGERS:
        op.execute(statement)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _set_aside("telemetry_unpartitioned", primary_key="customer_id, machine_id, seq, ts", partitioned=True)
    op.execute("CREATE TABLE telemetry_default PARTITION OF telemetry DEFAULT")
    weeks = {
        w.replace(tzinfo=UTC)
        for w in bind.exec_driver_sql(
            "SELECT DISTINCT date_trunc('week', ts AT TIME ZONE 'UTC') FROM telemetry_unpartitioned"
        ).scalars()
    }
    now = datetime.now(UTC)
    this_week = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=now.weekday())
    weeks |= {this_week + i * _WEEK for i in range(_AHEAD_WEEKS + 1)}
    for lo in sorted(weeks):
        op.execute(_partition(f"telemetry_p{lo:%Y%m%d}", lo))
    _fill_from("telemetry_unpartitioned")
    op.execute("CREATE SEQUENCE telemetry_partition_changes")
    op.execute(_NOTE_CHANGE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside("telemetry_partitioned", primary_key="customer_id, machine_id, seq", partitioned=False)
    _fill_from("telemetry_partitioned")
    op.execute("DROP FUNCTION telemetry_note_change()")
    op.execute("DROP SEQUENCE telemetry_partition_changes")
