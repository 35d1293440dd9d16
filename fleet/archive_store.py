"""This database's folder in the archive: `store=<id>/`, so that two deployments sharing an archive URL never
take each other's files for orphans of their own. Files registered before migration 0024 lie at the root
(`tenant=…/month=…`) and are read and expired by their registered path as before (and unregistered ones there
by what the file holds: `archive_legacy`).

A copy of the database (a backup restored for staging, say) keeps the store id. Each archive run therefore
writes a new token into the database and into the folder's marker file (`claim`); before anything sweeps,
expires or erases files there, the marker must hold this database's token (`checked`). Once one of two
databases sharing the folder (an original and its copy) has archived since the copy was made, the other finds
a token not its own and stops; until then they are not told apart (a known limit, in the README).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from fleet.db import for_writing
from fleet.errors import ArchiveStoreTaken
from fleet.tables import ArchiveStore

if TYPE_CHECKING:
    from fleet.archive import Location

MARKER = ".servicecast-store"


def folder(engine: Engine) -> str:
    """`store=<id>`: the folder under the archive root that only this database writes, sweeps, erases in."""
    return f"store={_store_id(engine)}"


def _store_id(engine: Engine) -> str:
    """This database's archive id, drawn on first use (a copy of a fresh database gets an id of its own)."""
    with engine.connect() as conn:
        found = conn.scalar(select(ArchiveStore.store))
    if found is None:
        try:
            with for_writing(engine).begin() as conn:
                conn.execute(insert(ArchiveStore).values(id=1, store=uuid.uuid4().hex[:16]))
        except IntegrityError:
            pass  # another process drew it first: theirs is the id
        with engine.connect() as conn:
            found = conn.scalar(select(ArchiveStore.store))
    return found


def checked(engine: Engine, where: Location) -> str:
    """This database's folder, unless another database with the same store id has written the folder's
    marker since this database's last archive run: then ArchiveStoreTaken, before any file is touched. The
    caller holds `archive.exclusive`."""
    ours = folder(engine)
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
        "so nothing was done. Give a copy an archive of its own (SERVICECAST_ARCHIVE_URL, with a copy of the "
        f"archive if it needs the files); if this database alone is in use now, delete {marker} and run again"
    )


def claim(engine: Engine, where: Location) -> str:
    """`checked`, then a new token in the database and in the folder's marker: an archive run's first step.
    Killed midway, the database still accepts the marker: it keeps the token being written as `pending`."""
    ours = checked(engine, where)
    token = uuid.uuid4().hex
    with for_writing(engine).begin() as conn:
        conn.execute(update(ArchiveStore).values(pending=token))
    where.fs.makedirs(where.path(ours), exist_ok=True)
    where.fs.pipe_file(where.path(f"{ours}/{MARKER}"), token.encode())
    with for_writing(engine).begin() as conn:
        conn.execute(update(ArchiveStore).values(token=token, pending=None))
    return ours
