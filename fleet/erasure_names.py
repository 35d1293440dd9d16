"""Rows that name a tenant but carry no customer id: its quarantined messages, its Sparkplug node state and
its edge nodes' broker logins. They go with the customer, and with what reaches the database naming the
tenant after its erasure (a message the broker had queued, a node's late birth)."""

from __future__ import annotations

import re

from sqlalchemy import Connection, delete, select

from fleet import contract, credentials, errors
from fleet.tables import Quarantine
from fleet.tables.sparkplug import SparkplugBirths, SparkplugCredential, SparkplugNode


def delete_named(conn: Connection, tenant: str, codes: set[str]) -> dict[str, int]:
    """Delete the rows naming the tenant (or, in a message of no tenant's topic, one of `codes`); counts."""
    quarantined = _quarantine_ids(conn, tenant, codes)
    conn.execute(delete(Quarantine).where(Quarantine.id.in_(quarantined)))
    return {
        "quarantine": len(quarantined),
        "sparkplug_nodes": conn.execute(
            delete(SparkplugNode).where(SparkplugNode.group_id == tenant)
        ).rowcount,
        "sparkplug_births": conn.execute(
            delete(SparkplugBirths).where(SparkplugBirths.group_id == tenant)
        ).rowcount,
        "sparkplug_credentials": _delete_edge_node_logins(conn, tenant),
    }


# Topics that name their tenant in the second level: ours, and Sparkplug's group.
_TENANT_TOPICS = (contract.TOPIC_ROOT, "spBv1.0")
_ID_CHARS = rb"A-Za-z0-9._-"  # what tenant ids and machine codes are made of (`contract`)


def _quarantine_ids(conn: Connection, tenant: str, codes: set[str]) -> list[int]:
    """Quarantined messages of the tenant: by the tenant in their topic, or, a topic naming no tenant, by
    the tenant or one of its machine codes as a whole word in topic or payload. Another tenant's messages
    stay, whatever machine codes they share (they are its data, replayable)."""
    names = b"|".join(re.escape(w.encode()) for w in sorted({tenant, *codes} - {""}))
    word = re.compile(rb"(?<![%s])(?:%s)(?![%s])" % (_ID_CHARS, names, _ID_CHARS))
    found, after = [], 0
    while True:
        page = conn.execute(
            select(Quarantine.id, Quarantine.topic, Quarantine.payload)
            .where(Quarantine.id > after)
            .order_by(Quarantine.id)
            .limit(1000)
        ).all()
        if not page:
            return found
        for qid, topic, payload in page:
            levels = topic.split("/")
            if len(levels) > 1 and levels[0] in _TENANT_TOPICS:
                ours = levels[1] == tenant
            else:
                ours = word.search(topic.encode() + b"\0" + bytes(payload or b"")) is not None
            if ours:
                found.append(qid)
        after = page[-1].id


def _delete_edge_node_logins(conn: Connection, tenant: str) -> int:
    """Delete the broker identities of the tenant's Sparkplug edge nodes: their group is the tenant."""
    try:
        prefix = credentials.edge_node_username(tenant, "-").removesuffix("-")
    except errors.InvalidInput:  # no edge node's group: STATE (spBv1.0/STATE/ names the hosts), '', 'a b'
        return 0
    doomed = SparkplugCredential.username.startswith(prefix, autoescape=True)  # '_' is a LIKE wildcard
    return conn.execute(delete(SparkplugCredential).where(doomed)).rowcount
