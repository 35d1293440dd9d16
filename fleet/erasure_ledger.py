"""The erasure ledger: a file per erasure in this database's archive folder, outside the database.

A database put back from a copy older than an erasure (a restored backup) holds the erased customer again, and
nothing in it says so. The ledger outlives such a restore: an erasure writes its entry (durable, as archive
files are) before its commit, naming the customer by its id, its registration time and a hash of its tenant id
salted with the store folder, not by the tenant id itself (a customer registered anew under that tenant id
after the erasure is another customer). While the database holds a customer the ledger lists, archive runs and
retention stop (`check`), so its rows never reach new archive files, the commands that read or write customer
data do not start (`check_start`), and `customers erase --reapply` erases it again (`restored`).
Parquet readers skip the hidden folder, and no sweep looks in it.

A database with no store folder yet (put back from before its first archive use) is checked against every
store folder's ledger, and the folder it draws starts with the entries that list its customers (`carry_over`).
Each receipt keeps its erasure's entry, so an archive folder put back from an older copy gets the entries
written since back (`write_back`).

The database and the archive folder put back together from before an erasure: the archive's ledger cannot
tell. So the ledger can have a copy, the same folders under SERVICECAST_ERASURE_LEDGER_COPY (a place kept out
of those backups), written first (an erasure whose copy cannot be written fails before its commit), read with
it, and each ledger given back the entries the other holds. Still not told: the copy put back or lost with
them, and an erasure made before the copy was set, when both are put back before a check has written its
entry into the copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, select

from fleet import archive_location, archive_store, durable, errors
from fleet.settings import env_name, get_settings
from fleet.tables import Customer, ErasureReceipt

if TYPE_CHECKING:
    from fleet.archive_location import Location

FOLDER = ".servicecast-erasures"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One erasure as the ledger keeps it."""

    customer_id: int
    created_at: str
    tenant_sha256: str
    pseudonym: str
    at: str


def _digest(store: str, tenant: str) -> str:
    return hashlib.sha256(f"{store}\0{tenant}".encode()).hexdigest()


def _registered(conn: Connection, customer_ids: list[int]) -> dict[int, tuple[str, str]]:
    """Per customer id: its tenant id and when it was registered, as the ledger writes it."""
    query = select(Customer.id, Customer.tenant, Customer.created_at).where(Customer.id.in_(customer_ids))
    return {i: (tenant, created.isoformat()) for i, tenant, created in conn.execute(query)}


def write(
    conn: Connection, where: Location, store: str, *, customer_id: int, pseudonym: str, at: datetime
) -> dict:
    """Record an erasure of the customer (still in `conn`) in the ledger of the database's `store` folder,
    durable on return; the entry and its store, for the receipt to keep (`write_back`)."""
    tenant, created_at = _registered(conn, [customer_id])[customer_id]
    entry = Entry(customer_id, created_at, _digest(store, tenant), pseudonym, at.isoformat())
    _put_each(where, store, entry)
    return {"store": store, **entry.__dict__}


def _ledgers(where: Location) -> list[Location]:
    """The ledgers beside the archive at `where`: the copy first when set, so that an erasure whose copy
    cannot be written fails before the archive's ledger names it."""
    copy = get_settings().erasure_ledger_copy
    return [where] if copy is None else [archive_location.location(copy), where]


def _put_each(where: Location, store: str, entry: Entry) -> None:
    """Write `entry` into every ledger of `store`; durable on return."""
    for ledger in _ledgers(where):
        _put(ledger, store, entry, archive=where)


def _put(ledger: Location, store: str, entry: Entry, *, archive: Location) -> None:
    """Write `entry` into the ledger of `store` at `ledger` (the archive's or the copy); durable on return."""
    path = _path(ledger, store, entry.pseudonym)
    try:
        # Whole: an empty or partial entry (full disk, crash) would read as a damaged ledger, stopping checks.
        durable.write(ledger.fs, path, json.dumps(entry.__dict__).encode(), root=ledger.root)
    except OSError as exc:
        if ledger is archive:
            raise
        # Its storage is not the archive's: the reader's words seldom say which setting names it.
        raise OSError(
            f"the erasure ledger's copy ({env_name('erasure_ledger_copy')}) cannot be written at {path}: "
            f"{exc.strerror or exc}"
        ) from exc


def withdrawn(where: Location, store: str, pseudonym: str) -> bool:
    """Whether the entries of the erasure `pseudonym` are gone from every ledger of `store` (removed durably,
    if written): an erasure that failed before its commit, having erased nothing, takes them back."""
    try:
        for ledger in _ledgers(where):
            durable.remove(ledger.fs, _path(ledger, store, pseudonym), root=ledger.root)
    except OSError as exc:
        log.warning("the erasure ledger entry of %s could not be taken back: %s", pseudonym, exc)
        return False
    return True


def _path(where: Location, store: str, pseudonym: str) -> str:
    """Where the entry of the erasure `pseudonym` lies in the ledger of `store` at `where`."""
    return where.path(f"{store}/{FOLDER}/{_name(pseudonym)}")


def _name(pseudonym: str) -> str:
    """The file name of an erasure's entry, the same in every store folder and ledger."""
    return f".{pseudonym}.json"  # hidden as its folder, to Parquet readers


def write_back(conn: Connection, where: Location, store: str) -> None:
    """Write again into each ledger of `store` the entries of this database's erasures it lacks (its folder
    put back from a copy older than them) and those the other ledger holds (a copy newly set, or one ledger
    put back alone), each ledger with a warning naming them."""
    ledgers = _ledgers(where)
    kept = [_entry(e) for e in conn.scalars(select(ErasureReceipt.ledger)) if e and e["store"] == store]
    if not kept and len(ledgers) == 1:
        return
    held = {ledger: _held(ledger, store) for ledger in ledgers}
    for ledger in ledgers:
        lost = {_name(entry.pseudonym): entry for entry in kept if _name(entry.pseudonym) not in held[ledger]}
        for other in ledgers:  # read only the files this one lacks
            missing = held[other].keys() - held[ledger].keys() - lost.keys()
            lost |= {name: _read(other, held[other][name]) for name in sorted(missing)}
        if not lost:
            continue
        folder = ledger.path(f"{store}/{FOLDER}")
        names = ", ".join(entry.pseudonym for entry in lost.values())
        entries = f"the entries of erasures {names} (put back from an older copy, or set since?)"
        try:
            for entry in lost.values():
                _put(ledger, store, entry, archive=where)
        except OSError as exc:
            raise OSError(
                f"the erasure ledger {folder} lacks {entries}, and they cannot be written back: "
                f"{exc.strerror or exc}"
            ) from exc
        log.warning(
            "the erasure ledger %s lacked %s: written again from this database's receipts%s",
            folder,
            entries,
            " and the other ledger" if len(ledgers) > 1 else "",
        )


def _entry(kept: dict) -> Entry:
    """The entry a receipt keeps (`write`'s dict, without its store)."""
    return Entry(**{k: v for k, v in kept.items() if k != "store"})


def carry_over(conn: Connection, where: Location, store: str) -> None:
    """Write into the ledgers of `store`, this database's store folder being drawn, the entries of the other
    store folders at their roots that list its customers: a database put back from a copy older than its first
    archive use draws a store id of its own, and the erasures the ledger of its original's id records must
    still be told (it could archive, erase another customer or be reapplied first)."""
    for tenant, entry in restored(conn, where, None):
        _put_each(where, store, replace(entry, tenant_sha256=_digest(store, tenant)))


def _held(where: Location, store: str) -> dict[str, str]:
    """The path of each entry in the ledger of `store` at `where`, by its file name."""
    folder = where.path(f"{store}/{FOLDER}")
    if not where.fs.exists(folder):
        return {}
    # A flat folder: its names without a stat each (`find` stats every file, 10,000 of them at each start).
    names = where.fs.ls(folder, detail=False)
    return {path.rsplit("/", 1)[-1]: path for path in names if path.endswith(".json")}


def _read(where: Location, path: str) -> Entry:
    """One ledger file's entry; ErasureLedgerUnreadable naming it when it is not one."""
    try:
        entry = Entry(**json.loads(where.fs.cat_file(path)))
        if not isinstance(entry.customer_id, int) or not all(
            isinstance(v, str) for v in (entry.created_at, entry.tenant_sha256, entry.pseudonym, entry.at)
        ):
            raise TypeError("a field of the wrong type")
    except (ValueError, TypeError) as exc:  # not JSON, not UTF-8, or not an entry's fields
        # Fails closed: the erasure it records cannot be checked, so nothing may archive past it.
        raise errors.ErasureLedgerUnreadable(
            f"the erasure ledger file {path} cannot be read ({exc}); nothing was archived or deleted: put it "
            "back from a backup of its folder"
        ) from exc
    return entry


def restored(conn: Connection, where: Location, store: str | None) -> list[tuple[str, Entry]]:
    """(tenant, ledger entry) of each customer in the database that the ledger of `store` lists as erased;
    with no `store` (before the database's first archive use), that the ledger of any store folder lists; in
    the archive and in the copy."""
    ledgers = _ledgers(where)
    stores = [store] if store is not None else sorted({s for ledger in ledgers for s in _stores(ledger)})
    files = {}  # each erasure's file once: the archive's, else the copy's (`write_back` makes them one)
    for s in stores:
        for ledger in reversed(ledgers):
            files |= {(s, n): (ledger, path) for n, path in _held(ledger, s).items() if (s, n) not in files}
    read = sorted((_read(ledger, path) for ledger, path in files.values()), key=lambda e: e.at)
    listed = {(e.customer_id, e.created_at, e.tenant_sha256): e for e in read}  # the newest per customer
    if not listed:
        return []
    found = _registered(conn, sorted({i for i, _, _ in listed})).items()
    keys = ((tenant, (i, created, _digest(s, tenant))) for i, (tenant, created) in found for s in stores)
    return list({tenant: listed[key] for tenant, key in keys if key in listed}.items())


def _stores(where: Location) -> list[str]:
    """The store folders at the archive root (this database's, a copy's, other deployments')."""
    if not where.fs.isdir(where.root):
        return []
    names = (path.rstrip("/").rsplit("/", 1)[-1] for path in where.fs.ls(where.root, detail=False))
    return sorted(name for name in names if name.startswith("store="))


REAPPLY = "servicecast customers erase --reapply"


def check(
    engine: Engine,
    where: Location,
    *,
    stopped: str = "Nothing was archived or deleted",
    unfinished_ok: bool = False,
) -> None:
    """ErasureUndone naming the customers the database holds though the ledger lists them as erased, and what
    was `stopped` for it; `unfinished_ok`: those whose erasure the database knows began (killed or failed)
    only warned of. Draws no store id: before the first archive use, any store's ledger counts."""
    with engine.connect() as conn:
        store = archive_store.folder_in(conn)
        found = restored(conn, where, store)
        if store:
            write_back(conn, where, store)
        begun = _begun(conn, found) if unfinished_ok and found else set()
    found = [(tenant, entry) for tenant, entry in found if tenant not in begun]
    if found:
        named = ", ".join(f"{tenant} (erased {entry.at} as {entry.pseudonym})" for tenant, entry in found)
        raise errors.ErasureUndone(
            f"this database holds customers the archive's erasure ledger lists as erased: {named}; it was "
            f"put back from a copy older than the erasure, or the erasure did not complete. {stopped}: "
            f"`{REAPPLY}` erases them again"
        )


def _begun(conn: Connection, found: list[tuple[str, Entry]]) -> set[str]:
    """The tenants of `found` whose erasure the database knows began and did not complete, each warned of
    with the command that completes it (the admin page and `customers list` show it too)."""
    from fleet import erasure  # it writes the ledger through this module

    unfinished = erasure.unfinished(conn, [entry.customer_id for _, entry in found])
    begun = sorted(tenant for tenant, entry in found if entry.customer_id in unfinished)
    for tenant in begun:
        log.warning(
            "the erasure of %s began and did not complete: `%s` completes it", tenant, erasure.rerun(tenant)
        )
    return set(begun)


def check_start(engine: Engine, archive_url: str, *, process: str) -> None:
    """`check` at the start of `process`, one that reads or writes customer data (`bootstrap.serving_engine`):
    ErasureUndone (it must not start) while the database holds a customer the ledger lists, unless the
    database knows that customer's erasure began (killed or failed: a warning, and the API shows it). A
    ledger that cannot be read (its storage away, a damaged file) is a warning, not a refusal: archive runs
    and retention stop on it already, and storage away for a while must not keep every process from
    starting."""
    try:
        check(
            engine,
            archive_location.location(archive_url),
            stopped="Nothing of theirs was read or written",
            unfinished_ok=True,
        )
    except (errors.ErasureLedgerUnreadable, OSError) as exc:
        log.warning("%s starts without the erasure ledger checked: %s", process, exc)
    except errors.ErasureUndone as exc:
        raise errors.ErasureUndone(f"`servicecast {process}` did not start: {exc}, then start it") from None
