"""Files archived before the store folders (migration 0024): in the archive root's `tenant=T/` folders.

This database reads, expires and erases the files it registers there by their path. Another deployment
sharing the archive URL wrote to the same folders then, so a file there that no registration names (a killed
archive run's leftover, a file a killed retention run unregistered and did not remove, another deployment's
file, someone's own) counts as this database's only when the file itself says so: a name the archive writes
(`month=YYYY-MM/part-<32 hex>.parquet`), the archive's format metadata, and rows that all carry this
database's id of customer T and ids of T's machines. An erasure removes those and names every other file it
leaves in the folder; retention removes those whose every row is past its cutoff. (A file another deployment
wrote for a customer of the same code, with the same ids by chance, passes too: such deployments already swept
each other's files before 0024.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, select

from fleet import archive
from fleet.tables import ArchiveFile, Customer, Machine

_NAME = re.compile(r"^month=\d{4}-\d{2}/part-[0-9a-f]{32}\.parquet$")  # within a tenant folder


@dataclass(frozen=True)
class Owner:
    """This database's ids of a tenant: its customer and that customer's machines."""

    customer_id: int
    machine_ids: frozenset[int]


def folder(where: archive.Location, tenant: str) -> str:
    """The tenant's folder at the archive root, where archive runs before migration 0024 wrote."""
    return where.path(f"tenant={tenant}")


def why_not_ours(where: archive.Location, path: str, name: str, owner: Owner) -> str | None:
    """None when the file at `path` (`name` within its tenant folder) is this database's file of `owner`;
    else why it cannot be taken for one. Its rows are read by column, only the ids."""
    if not _NAME.match(name):
        return "not a file the archive writes (its name)"
    try:
        table = archive.read_file(where, path, columns=["customer_id", "machine_id"])
    except (OSError, pa.ArrowException, KeyError) as exc:
        return f"cannot be read as an archive file ({type(exc).__name__})"
    if b"servicecast.archive" not in (table.schema.metadata or {}):
        return "not a file the archive writes (no servicecast.archive metadata)"
    customers = set(pc.unique(table.column("customer_id")).to_pylist())
    machines = set(pc.unique(table.column("machine_id")).to_pylist())
    if customers - {owner.customer_id} or machines - owner.machine_ids:
        return (
            "its rows carry customer or machine ids this database does not give the customer: another "
            "deployment sharing the archive may have written it"
        )
    return None


def _found(where: archive.Location, tenant: str, registered: set[str]) -> list[tuple[str, str]]:
    """(path, name within the folder) of every file in the tenant's root folder no registration names."""
    top = folder(where, tenant).lstrip("/")
    if not where.fs.exists(folder(where, tenant)):
        return []
    found = []
    for path in where.fs.find(folder(where, tenant)):
        name = path.lstrip("/")[len(top) + 1 :]
        if f"tenant={tenant}/{name}" not in registered:
            found.append((path, name))
    return found


def sort(
    where: archive.Location, tenant: str, owner: Owner, *, registered: set[str]
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """For an erasure: the paths of the customer's unregistered files in its root folder, and (path, name,
    why) of the others there, which it leaves."""
    ours, left = [], []
    for path, name in _found(where, tenant, registered):
        why = why_not_ours(where, path, name, owner)
        if why is None:
            ours.append(path)
        else:
            left.append((path, name, why))
    return ours, left


def remove_expired(engine: Engine, where: archive.Location, *, before: datetime) -> int:
    """Remove the unregistered files of this database's customers in the root's tenant folders whose every row
    is older than `before`; the caller holds `archive.exclusive`. One listing of the root when it has none."""
    if not where.fs.exists(where.root):
        return 0
    names = (p.rstrip("/").rsplit("/", 1)[-1] for p in where.fs.ls(where.root, detail=False))
    tenants = {n.removeprefix("tenant=") for n in names if n.startswith("tenant=")}
    if not tenants:
        return 0
    with engine.connect() as conn:
        owners = _owners(conn, tenants)
        registered = set(conn.scalars(select(ArchiveFile.path).where(~ArchiveFile.path.startswith("store="))))
    removed = 0
    for tenant, owner in owners.items():
        for path, name in _found(where, tenant, registered):
            if why_not_ours(where, path, name, owner) is None and archive.all_before(where, path, before):
                where.fs.rm(path)
                removed += 1
    return removed


def _owners(conn: Connection, tenants: set[str]) -> dict[str, Owner]:
    rows = conn.execute(
        select(Customer.tenant, Customer.id, Machine.id)
        .outerjoin(Machine, Machine.customer_id == Customer.id)
        .where(Customer.tenant.in_(sorted(tenants)))
    ).all()
    machines: dict[tuple[str, int], set[int]] = {}
    for tenant, customer_id, machine_id in rows:
        machines.setdefault((tenant, customer_id), set()).update([machine_id] if machine_id else [])
    return {tenant: Owner(cid, frozenset(ids)) for (tenant, cid), ids in machines.items()}
