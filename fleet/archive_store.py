"""This database's folder in the archive: `store=<id>/`, so that two deployments sharing an archive URL never
take each other's files for orphans of their own. Files registered before migration 0024 lie at the root
(`tenant=…/month=…`) and are read and expired by their registered path as before (and unregistered ones there
by what the file holds: `archive_legacy`)."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from fleet.db import for_writing
from fleet.tables import ArchiveStore


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
