"""This database's folder in the archive: `store=<id>/`, so that two deployments sharing an archive URL never
take each other's files for orphans of their own. Files registered before migration 0024 lie at the root
(`tenant=…/month=…`) and are read and expired by their registered path as before (and unregistered ones there
by what the file holds: `archive_legacy`).

A copy of the database (a backup restored for staging, say) keeps the store id. So the store records which
database owns it (`archive_owner`: the identity of the database that drew the id or claimed the folder), and
each archive run writes a new token into the database and into the folder's marker file (`claim`). Before
anything sweeps, expires or erases files there (`checked`), this database must be the owner (a copy is not,
from the moment it is made) and the marker must hold its token (a physical copy of a PostgreSQL cluster keeps
the owner's identity: the first of the two to archive after the copy then stops the other). `adopt` makes
this database the owner: a copy given an archive of its own, or the database in use after the owner retired.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from fleet import archive_owner, durable
from fleet.db import for_writing
from fleet.errors import ArchiveStoreCopied, ArchiveStoreTaken
from fleet.tables import ArchiveStore

if TYPE_CHECKING:
    from fleet.archive import Location

MARKER = ".servicecast-store"


def folder(engine: Engine) -> str:
    """`store=<id>`: the folder under the archive root that only this database writes, sweeps, erases in."""
    return f"store={_store_id(engine)}"


def folder_in(conn: Connection) -> str | None:
    """`folder` as this connection reads it, drawing nothing: None before the database's first archive use."""
    found = conn.scalar(select(ArchiveStore.store))
    return None if found is None else f"store={found}"


def _store_id(engine: Engine, where: Location | None = None) -> str:
    """This database's archive id, drawn on first use (a copy of a fresh database gets an id of its own); with
    the archive (`where`), the erasures other store folders' ledgers record of its customers carried over."""
    with engine.connect() as conn:
        found = conn.scalar(select(ArchiveStore.store))
    if found is None:
        store = uuid.uuid4().hex[:16]
        if where is not None:  # before the id commits: a crash in between leaves the database without one
            from fleet import erasure_ledger  # it reads this module's store folders

            with engine.connect() as conn:
                erasure_ledger.carry_over(conn, where, f"store={store}")
        try:
            with for_writing(engine).begin() as conn:
                drawn = {"store": store, "owner": archive_owner.of(conn)}
                conn.execute(insert(ArchiveStore).values(id=1, **drawn))
        except IntegrityError:
            pass  # another process drew it first: theirs is the id
        with engine.connect() as conn:
            found = conn.scalar(select(ArchiveStore.store))
    return found


def checked(engine: Engine, where: Location) -> str:
    """This database's folder, unless it is a copy of the store's owner (ArchiveStoreCopied) or another
    database with the same store id has written the folder's marker since this database's last archive run
    (ArchiveStoreTaken): raised before any file is touched. The caller holds `archive.exclusive`."""
    ours = f"store={_store_id(engine, where)}"
    _owned(engine, where.path(ours))
    marker = where.path(f"{ours}/{MARKER}")
    if not where.fs.exists(marker):
        return (
            ours  # not marked yet (no run since the upgrade, or none at all), or handed over by deleting it
        )
    found = where.fs.cat_file(marker).decode(errors="replace").strip()
    with engine.connect() as conn:
        token, pending = conn.execute(select(ArchiveStore.token, ArchiveStore.pending)).one()
    if found in {token, pending} - {None}:
        return ours
    raise ArchiveStoreTaken(
        f"the archive folder {where.path(ours)} is in use by another database with this database's store id "
        "(a copy of it, such as a restored backup, or the one it was restored from): that database has "
        "archived there since this one did, and sweeping, expiring or erasing there would delete its files, "
        f"so nothing was done. {_remedy('this database alone is in use now')}"
    )


def _owned(engine: Engine, path: str) -> None:
    """ArchiveStoreCopied unless this database owns the store (or has no identity: in-memory SQLite)."""
    with engine.connect() as conn:
        owner, current = conn.scalar(select(ArchiveStore.owner)), archive_owner.of(conn)
    if owner is None or current is None or archive_owner.same(owner, current):
        return
    raise ArchiveStoreCopied(
        f"this database ({archive_owner.described(current)}) is a copy of the one that owns its archive "
        f"folder {path} ({archive_owner.described(owner)}): sweeping, expiring or erasing there could "
        "delete that database's files, so nothing was done. "
        + _remedy(
            "this database replaces it (restored after it was lost, moved to another server or file system, "
            "upgraded by dump and restore)"
        )
    )


def _remedy(alone: str) -> str:
    """What to do about a folder another database uses: both ways end in `retention claim-archive`."""
    return (
        "If that database is still in use, give this one an archive of its own (SERVICECAST_ARCHIVE_URL, "
        "with a copy of the archive if it needs the files) and run `servicecast retention claim-archive`; "
        f"if {alone}, run `servicecast retention claim-archive` alone"
    )


def claim(engine: Engine, where: Location) -> str:
    """`checked`, then a new token in the database and in the folder's marker: an archive run's first step."""
    ours = checked(engine, where)
    _mark(engine, where, ours)
    return ours


def adopt(engine: Engine, where: Location) -> str:
    """Make this database the owner of its store and write it a new token: a database that archived in the
    folder before (the one this was copied from) stops at its next run. Returns the folder's full path."""
    from fleet import archive  # archive runs call this module

    ours = f"store={_store_id(engine, where)}"
    with archive.exclusive(engine, wait=True):
        with for_writing(engine).begin() as conn:
            conn.execute(update(ArchiveStore).values(owner=archive_owner.of(conn)))
        _mark(engine, where, ours)
    return where.path(ours)


def _mark(engine: Engine, where: Location, ours: str) -> None:
    """A new token in the database and in the folder's marker. Killed midway, the database still accepts the
    marker: it keeps the token being written as `pending`."""
    token = uuid.uuid4().hex
    with for_writing(engine).begin() as conn:
        conn.execute(update(ArchiveStore).values(pending=token))
    # Durable before the database takes the token: one lost to a power cut would read as another database's;
    # whole: a full disk leaves the marker as it was (a token the database still accepts), not empty.
    durable.write(where.fs, where.path(f"{ours}/{MARKER}"), token.encode(), root=where.root)
    with for_writing(engine).begin() as conn:
        conn.execute(update(ArchiveStore).values(token=token, pending=None))
