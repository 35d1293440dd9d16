"""Load and save a Sparkplug B host's per-edge-node state (the sparkplug_nodes table)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select, tuple_

from fleet import dialect
from fleet.tables import SparkplugNode, utcnow

NodeKey = tuple[str, str]  # (group_id, edge_node)


def load(conn: Connection, host_id: str, keys: Iterable[NodeKey]) -> dict[NodeKey, dict]:
    """The stored state of these edge nodes for this host; nodes never seen are absent."""
    keys = list(keys)
    if not keys:
        return {}
    table = SparkplugNode.__table__
    query = select(table.c.group_id, table.c.edge_node, table.c.state).where(
        table.c.host_id == host_id, tuple_(table.c.group_id, table.c.edge_node).in_(keys)
    )
    return {(g, e): state for g, e, state in conn.execute(query)}


def save(conn: Connection, host_id: str, states: dict[NodeKey, dict]) -> None:
    """Insert or replace the state of these edge nodes, in the caller's transaction."""
    if not states:
        return
    table = SparkplugNode.__table__
    now = utcnow()
    rows = [
        {"host_id": host_id, "group_id": g, "edge_node": e, "state": state, "updated_at": now}
        for (g, e), state in states.items()
    ]
    stmt = dialect.insert(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["host_id", "group_id", "edge_node"],
        set_={"state": stmt.excluded.state, "updated_at": stmt.excluded.updated_at},
    )
    conn.execute(stmt, rows)


def rebirth_pending(conn: Connection, host_id: str) -> list[NodeKey]:
    """Edge nodes this host has asked (or meant to ask) for a rebirth that has not come yet."""
    table = SparkplugNode.__table__
    query = select(table.c.group_id, table.c.edge_node, table.c.state).where(table.c.host_id == host_id)
    return sorted((g, e) for g, e, state in conn.execute(query) if state.get("rebirth_pending"))
