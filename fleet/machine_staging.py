"""A machines import staged in a temporary table, then registered by one INSERT … SELECT in a short write.

A temporary table belongs to its connection, outside the store: writing it takes no lock on the store (on
SQLite, not its write lock), so the file's rows are read, checked and staged while ingesters write, and the
write transaction that registers them is as short as one statement the database runs over them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    MetaData,
    String,
    Table,
    and_,
    func,
    literal,
    select,
    true,
)

from fleet import dialect
from fleet.registration import machine_details
from fleet.tables import Customer, Machine, Site, utcnow
from fleet.tables.base import UtcDateTime

STAGED = Table(
    "servicecast_machines_staged",
    MetaData(),
    Column("tenant", String),
    Column("machine", String),
    Column("site", String),
    Column("machine_type", String),
    Column("serial", String),
    Column("installed", Date),
    Column("contract_tier", String),
    prefixes=["TEMPORARY"],
)
_DROP = f"DROP TABLE IF EXISTS {STAGED.name}"


@contextmanager
def staged(conn: Connection) -> Iterator[None]:
    """An empty staging table on `conn` for the block; dropped after it (a failed transaction rolled back)."""
    conn.exec_driver_sql(_DROP)
    STAGED.create(conn)
    try:
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()
        conn.exec_driver_sql(_DROP)
        conn.commit()


def stage(conn: Connection, machines: list[dict]) -> None:
    """Add parsed machines (machine_import's rows: tenant, machine and the optional fields) to the table."""
    if machines:
        conn.execute(
            STAGED.insert(),
            [
                {"tenant": m["tenant"], "machine": m["machine"], "site": m.get("site"), **machine_details(m)}
                for m in machines
            ],
        )


def _customer() -> object:
    return STAGED.join(Customer, Customer.tenant == STAGED.c.tenant)


def existing(conn: Connection) -> int:
    """How many staged machines are registered already."""
    joined = _customer().join(
        Machine, and_(Machine.customer_id == Customer.id, Machine.code == STAGED.c.machine)
    )
    return conn.scalar(select(func.count()).select_from(joined)) or 0


def register(conn: Connection) -> None:
    """Register the staged machines not registered yet, as registration.registrar's `add` would (their
    customers and sites added before)."""
    owned = _customer().outerjoin(Site, and_(Site.customer_id == Customer.id, Site.name == STAGED.c.site))
    rows = (
        select(
            Customer.id,
            Site.id,
            STAGED.c.machine,
            STAGED.c.machine_type,
            STAGED.c.serial,
            STAGED.c.installed,
            STAGED.c.contract_tier,
            literal(False, Boolean),
            literal(utcnow(), UtcDateTime),
        )
        .select_from(owned)
        .where(true())  # SQLite reads INSERT … SELECT … JOIN … ON CONFLICT only with a WHERE before it
    )
    columns = [
        "customer_id",
        "site_id",
        "code",
        "machine_type",
        "serial",
        "installed",
        "contract_tier",
        "auto_registered",
        "created_at",
    ]
    insert = dialect.insert(conn, Machine.__table__).from_select(columns, rows)
    conn.execute(insert.on_conflict_do_nothing(index_elements=["customer_id", "code"]))
