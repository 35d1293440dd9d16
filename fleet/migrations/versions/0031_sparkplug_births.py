"""sparkplug_births: what each edge node's births declared (aliases, signed metrics, devices'), apart from its
state

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 08:00:00

The host wrote each node's whole state, births included, with every batch of that node's data: a node whose
births declare 500 metrics rewrote ~9 KB a node a batch for a seq and a timestamp. The declarations now
change only with a birth and are written only then. The upgrade moves them out of each stored state; the
downgrade puts them back.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_BIRTH_KEYS = ("aliases", "signed", "device_metrics")  # fleet.sparkplug_state.BIRTH_KEYS when written
_KEY = ("host_id", "group_id", "edge_node")


def _table(name: str, column: str) -> sa.TableClause:
    # updated_at untyped: copied from a node's row to its births' as the driver gives it.
    key = [sa.column(k, sa.String) for k in _KEY]
    return sa.table(name, *key, sa.column(column, _JSON), sa.column("updated_at"))


def _tables() -> tuple[sa.TableClause, sa.TableClause]:
    return _table("sparkplug_nodes", "state"), _table("sparkplug_births", "births")


def upgrade() -> None:
    op.create_table(
        "sparkplug_births",
        sa.Column("host_id", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.Column("edge_node", sa.String(length=128), nullable=False),
        sa.Column("births", _JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("host_id", "group_id", "edge_node", name=op.f("pk_sparkplug_births")),
    )
    conn = op.get_bind()
    nodes, births = _tables()
    for host_id, group_id, edge_node, state, updated_at in conn.execute(sa.select(nodes)).all():
        declared = {k: state.pop(k) for k in _BIRTH_KEYS if k in state}
        key = {"host_id": host_id, "group_id": group_id, "edge_node": edge_node}
        conn.execute(births.insert().values(**key, births=declared, updated_at=updated_at))
        where = sa.and_(*(nodes.c[k] == v for k, v in key.items()))
        conn.execute(nodes.update().where(where).values(state=state))


def downgrade() -> None:
    conn = op.get_bind()
    nodes, births = _tables()
    for host_id, group_id, edge_node, declared, _ in conn.execute(sa.select(births)).all():
        key = {"host_id": host_id, "group_id": group_id, "edge_node": edge_node}
        where = sa.and_(*(nodes.c[k] == v for k, v in key.items()))
        state = conn.execute(sa.select(nodes.c.state).where(where)).scalar()
        if state is not None:
            conn.execute(nodes.update().where(where).values(state={**state, **declared}))
    op.drop_table("sparkplug_births")
