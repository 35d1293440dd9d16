"""Which database this is, so that a copy of it (a restored backup, `pg_dump | psql` into another database, a
copied SQLite file) is told from the database that owns the archive folder, though both hold the same rows.

PostgreSQL: the cluster's system identifier (`pg_control_system()`, open to every user since PostgreSQL 10;
where a server refuses it, the identity goes without it), the database's OID and name. A restore into another
database or server gets another OID or cluster; a physical copy of the whole cluster (a base backup, a disk
snapshot, a promoted replica) keeps all three, as a failover must. SQLite: the file's inode, which a copy does
not keep; a file renamed or moved within its file system keeps it and stays the owner, a file moved to another
file system is a copy. Its path and device are recorded for the operator's messages only: a device number is
not stable (a reboot can renumber LVM and device-mapper volumes, NFS and container mounts).
"""

from __future__ import annotations

import json
import os

from sqlalchemy import Connection, text


def of(conn: Connection) -> str | None:
    """This database's identity as stored in `archive_store.owner`; None for an in-memory SQLite database."""
    if conn.dialect.name == "postgresql":
        return json.dumps(_postgresql(conn), sort_keys=True)
    file = conn.exec_driver_sql("PRAGMA database_list").fetchone()[2]  # the main database's absolute path
    if not file:
        return None
    found = os.stat(file)
    return json.dumps({"file": file, "device": found.st_dev, "inode": found.st_ino}, sort_keys=True)


def _postgresql(conn: Connection) -> dict:
    name, oid = conn.execute(
        text("SELECT current_database(), oid FROM pg_database WHERE datname = current_database()")
    ).one()
    allowed = conn.scalar(text("SELECT has_function_privilege('pg_control_system()', 'EXECUTE')"))
    cluster = conn.scalar(text("SELECT system_identifier FROM pg_control_system()")) if allowed else None
    return {"database": name, "oid": int(oid), "cluster": None if cluster is None else str(cluster)}


def same(recorded: str, current: str) -> bool:
    """Whether two identities are one database: the cluster is compared when both know it, and without it the
    database's name with its OID (an OID alone repeats from one fresh server to the next)."""
    a, b = json.loads(recorded), json.loads(current)
    if "inode" in a or "inode" in b:
        return a.get("inode") == b.get("inode")
    if a["cluster"] and b["cluster"]:
        return (a["cluster"], a["oid"]) == (b["cluster"], b["oid"])
    return (a["database"], a["oid"]) == (b["database"], b["oid"])


def described(identity: str) -> str:
    """An identity in words, for an operator."""
    found = json.loads(identity)
    if "inode" in found:
        return f"SQLite file {found['file']} (device {found['device']}, inode {found['inode']})"
    cluster = found["cluster"] or "not readable (pg_control_system refused)"
    return f"PostgreSQL database {found['database']} (OID {found['oid']}, cluster {cluster})"
