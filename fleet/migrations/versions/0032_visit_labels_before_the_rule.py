"""visit labels for alerts resolved "other" before the visit rule (695b4e0) made them

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06 10:30:00

Since 695b4e0 an alert resolved "other" (a technician came and recorded neither fault nor no fault) stores a
`visit` label, which training and the alert figures read; one resolved so before got none, so training still
took the week before such a visit for healthy. The upgrade adds the label `fleet.labels.record_finding` now
makes (at the resolution time, the alert's failure mode, no component, ref `alert:ID`) for every such alert
with no label of its own, none on an alert about the machine's messages, and none where the machine holds a
visit label at that time already. Its source `migration` marks what it added: running it again adds nothing,
and the downgrade removes those labels only.
"""

import sqlalchemy as sa
from alembic import op

from fleet.tables.base import UtcDateTime, utcnow

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

SOURCE = "migration"  # fleet.tables.labels.LABEL_SOURCES
_ABOUT_MESSAGES = ("no_data", "low_data_rate")  # api.connectivity.MODES when written
_UNNAMED_MODE = "unknown"  # fleet.tables.workflow.UNNAMED_MODE when written
_OWN = "SELECT ref FROM labels WHERE ref LIKE 'alert:%'"


def upgrade() -> None:
    conn = op.get_bind()
    labelled = set(conn.execute(sa.text(_OWN)).scalars())
    resolved = conn.execute(
        sa.text(
            "SELECT id, customer_id, machine_id, failure_mode, resolved_at FROM alerts "
            "WHERE finding = 'other' AND resolved_at IS NOT NULL AND failure_mode NOT IN :about ORDER BY id"
        )
        .bindparams(sa.bindparam("about", expanding=True))
        .columns(resolved_at=UtcDateTime()),
        {"about": list(_ABOUT_MESSAGES)},
    ).all()
    now = utcnow()
    rows = [
        {
            "customer_id": customer_id,
            "machine_id": machine_id,
            "ts": resolved_at,
            "mode": None if mode == _UNNAMED_MODE else mode,
            "ref": f"alert:{alert_id}",
            "created_at": now,
        }
        for alert_id, customer_id, machine_id, mode, resolved_at in resolved
        if f"alert:{alert_id}" not in labelled
    ]
    if rows:
        # The natural key (machine, ts, kind, component) is unique: a visit label there already is kept.
        insert = sa.text(
            "INSERT INTO labels (customer_id, machine_id, ts, kind, component, mode, source, ref, created_at)"
            f" VALUES (:customer_id, :machine_id, :ts, 'visit', '', :mode, '{SOURCE}', :ref, :created_at) "
            "ON CONFLICT (machine_id, ts, kind, component) DO NOTHING"
        ).bindparams(sa.bindparam("ts", type_=UtcDateTime()), sa.bindparam("created_at", type_=UtcDateTime()))
        conn.execute(insert, rows)


def downgrade() -> None:
    op.execute(f"DELETE FROM labels WHERE source = '{SOURCE}' AND kind = 'visit' AND ref LIKE 'alert:%'")
