"""Change counters of watched tables: an equal counter means the table was not written in between."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select

from fleet.tables import ChangeCounter

_VERSION = select(ChangeCounter.version).where(ChangeCounter.name == bindparam("name"))


def version(conn: Connection, table: str) -> int | None:
    """The table's change counter now; None if the table is not watched."""
    return conn.execute(_VERSION, {"name": table}).scalar()
