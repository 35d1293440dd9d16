"""simulator labels name their part: a simulated failure's or found wear's component, not its failure mode

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 06:00:00

The simulator stored a label's failure mode as its component too (`bearing_wear`), a component no type
declares, so "hours since the part's last visit" never counted it. The upgrade names the component the
machine's type says the mode belongs to (`fleet.machine_types.declared`, as the simulator now writes it),
none for a type no types file defines; a label whose new key another label holds is left as it was. The
downgrade names the mode again.
"""

import sqlalchemy as sa
from alembic import op

from fleet import machine_types

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

_WORN = "source = 'simulator' AND kind IN ('failure', 'replacement') AND mode IS NOT NULL"
# The natural key (machine, ts, kind, component) is unique: a rename onto a key taken would fail the upgrade.
_KEY_FREE = (
    "NOT EXISTS (SELECT 1 FROM labels o WHERE o.machine_id = labels.machine_id AND o.ts = labels.ts "
    "AND o.kind = labels.kind AND o.component = {new})"
)


def upgrade() -> None:
    conn = op.get_bind()
    pairs = conn.execute(
        sa.text(
            "SELECT DISTINCT (SELECT machine_type FROM machines WHERE id = labels.machine_id), mode "
            f"FROM labels WHERE {_WORN} AND component = mode"
        )
    ).all()
    declared = machine_types.declared(conn, {machine_type for machine_type, _ in pairs})
    rename = sa.text(
        f"UPDATE labels SET component = :component WHERE {_WORN} AND component = :mode AND mode = :mode "
        "AND machine_id IN (SELECT id FROM machines WHERE machine_type = :type) "
        f"AND {_KEY_FREE.format(new=':component')}"
    )
    for machine_type, mode in pairs:
        found = declared.get(machine_type)
        component = (found and found.component_of(mode)) or ""
        if component != mode:
            conn.execute(rename, {"component": component, "mode": mode, "type": machine_type})


def downgrade() -> None:
    op.execute(
        f"UPDATE labels SET component = mode WHERE {_WORN} AND component <> mode "
        f"AND {_KEY_FREE.format(new='labels.mode')}"
    )
