"""Load and save a Sparkplug B host's per-edge-node state (sparkplug_nodes) and what its births declared
(sparkplug_births, written only with a birth)."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import orjson
from sqlalchemy import Connection, select, tuple_

from fleet import dialect
from fleet.tables import SparkplugBirths, SparkplugNode, utcnow

NodeKey = tuple[str, str]  # (group_id, edge_node)
# The keys of a state that only a birth changes, kept in sparkplug_births.
BIRTH_KEYS = ("aliases", "signed", "device_metrics")


def load(conn: Connection, host_id: str, keys: Iterable[NodeKey]) -> dict[NodeKey, dict]:
    """The stored state of these edge nodes for this host, with what their births declared; nodes never seen
    are absent."""
    keys = list(keys)
    if not keys:
        return {}
    nodes, births = SparkplugNode.__table__, SparkplugBirths.__table__
    on = [births.c.host_id == nodes.c.host_id, births.c.group_id == nodes.c.group_id]
    query = (
        select(nodes.c.group_id, nodes.c.edge_node, nodes.c.state, births.c.births)
        .outerjoin(births, (on[0]) & (on[1]) & (births.c.edge_node == nodes.c.edge_node))
        .where(nodes.c.host_id == host_id, tuple_(nodes.c.group_id, nodes.c.edge_node).in_(keys))
    )
    empty = {"aliases": {}, "signed": {}, "device_metrics": {}}
    return {(g, e): {**state, **(declared or empty)} for g, e, state, declared in conn.execute(query)}


def save(conn: Connection, host_id: str, states: dict[NodeKey, dict], born: Collection[NodeKey] = ()) -> None:
    """Insert or replace the state of these edge nodes, and what the births of those in `born` declared, in
    the caller's transaction."""
    if not states:
        return
    # Below SQLAlchemy's per-row parameter processing: a batch saves up to one state per edge node, and the
    # ORM-level upsert cost more than the batch's telemetry rows' Python (docs/sparkplug.md).
    now = dialect.ts_param(utcnow(), conn.dialect)
    rows, declared = [], []
    for (g, e), state in states.items():
        rows.append(
            (
                host_id,
                g,
                e,
                orjson.dumps({k: v for k, v in state.items() if k not in BIRTH_KEYS}).decode(),
                now,
            )
        )
        if (g, e) in born:
            declared.append(
                (host_id, g, e, orjson.dumps({k: state.get(k, {}) for k in BIRTH_KEYS}).decode(), now)
            )
    _upsert(conn, "sparkplug_nodes", "state", rows)
    _upsert(conn, "sparkplug_births", "births", declared)


def _upsert(conn: Connection, table: str, column: str, rows: list[tuple]) -> None:
    if not rows:
        return
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    value = mark if conn.dialect.name == "sqlite" else f"CAST({mark} AS jsonb)"
    conn.exec_driver_sql(
        f"INSERT INTO {table} (host_id, group_id, edge_node, {column}, updated_at) "
        f"VALUES ({mark}, {mark}, {mark}, {value}, {mark}) ON CONFLICT (host_id, group_id, edge_node) "
        f"DO UPDATE SET {column} = excluded.{column}, updated_at = excluded.updated_at",
        rows,
    )


def rebirth_pending(conn: Connection, host_id: str) -> list[NodeKey]:
    """Edge nodes this host has asked (or meant to ask) for a rebirth that has not come yet."""
    table = SparkplugNode.__table__
    query = select(table.c.group_id, table.c.edge_node, table.c.state).where(table.c.host_id == host_id)
    return sorted((g, e) for g, e, state in conn.execute(query) if state.get("rebirth_pending"))
