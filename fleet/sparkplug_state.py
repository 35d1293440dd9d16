"""Load and save a Sparkplug B host's per-edge-node state (the sparkplug_nodes table)."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
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
    # Below SQLAlchemy's per-row parameter processing: a batch saves up to one state per edge node, and the
    # ORM-level upsert cost more than the batch's telemetry rows' Python (docs/sparkplug.md).
    now = dialect.ts_param(utcnow(), conn.dialect)
    rows = [(host_id, g, e, orjson.dumps(state).decode(), now) for (g, e), state in states.items()]
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    state = mark if conn.dialect.name == "sqlite" else f"CAST({mark} AS jsonb)"
    conn.exec_driver_sql(
        "INSERT INTO sparkplug_nodes (host_id, group_id, edge_node, state, updated_at) "
        f"VALUES ({mark}, {mark}, {mark}, {state}, {mark}) ON CONFLICT (host_id, group_id, edge_node) "
        "DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        rows,
    )


def rebirth_pending(conn: Connection, host_id: str) -> list[NodeKey]:
    """Edge nodes this host has asked (or meant to ask) for a rebirth that has not come yet."""
    table = SparkplugNode.__table__
    query = select(table.c.group_id, table.c.edge_node, table.c.state).where(table.c.host_id == host_id)
    return sorted((g, e) for g, e, state in conn.execute(query) if state.get("rebirth_pending"))
