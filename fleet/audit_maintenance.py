"""The one sanctioned way to change audit rows: erasure pseudonyms and retention beyond the floor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, delete, insert, text

from fleet.tables.lifecycle import audit_maintenance


@contextmanager
def allowed(conn: Connection, reason: str) -> Iterator[None]:
    """Within the caller's transaction, let statements update or delete audit rows (migration 0017)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL servicecast.audit_maintenance = 'on'"))
        try:
            yield
        finally:
            conn.execute(text("SET LOCAL servicecast.audit_maintenance = 'off'"))
        return
    conn.execute(insert(audit_maintenance).values(reason=reason))
    try:
        yield
    finally:
        conn.execute(delete(audit_maintenance))
