"""Catalog versions kept in the database: added as YAML through the file's checks, one in force at a time.

Until a version is activated the shipped file (api/catalog.yaml) is in force; after that, the version
activated last. The policy, the API and the console all ask `in_force`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import catalog
from api.audit import log_event
from api.errors import Conflict
from fleet import errors
from fleet.audit import Actor
from fleet.tables import CatalogVersion

MAX_SOURCE = 200_000


@dataclass(frozen=True)
class ListedVersion:
    """A catalog version as the console, the API and the CLI list it."""

    version: int
    currency: str
    items: int
    added_by: str | None
    added_at: datetime | None
    activated_at: datetime | None
    active: bool
    shipped: bool  # the file api/catalog.yaml, not a stored version


@lru_cache(maxsize=8)
def _parsed(source: str, version: int) -> catalog.Catalog:
    return catalog.parse(source, source=f"catalog version {version}", stored=True)


def _active_row(sess: Session) -> CatalogVersion | None:
    return sess.scalars(
        select(CatalogVersion)
        .where(CatalogVersion.activated_at.is_not(None))
        .order_by(CatalogVersion.activated_at.desc(), CatalogVersion.version.desc())
        .limit(1)
    ).first()


def in_force(sess: Session) -> catalog.Catalog:
    """The catalog new offers use: the version activated last, else the shipped file."""
    row = _active_row(sess)
    return catalog.default() if row is None else _parsed(row.source, row.version)


def of_offer(sess: Session, version: int | None) -> catalog.Catalog | None:
    """The catalog version an offer was priced from (the one in force if it names none), or None if gone."""
    if version is None:
        return in_force(sess)
    if version == catalog.default().version:
        return catalog.default()
    row = sess.get(CatalogVersion, version)
    return None if row is None else _parsed(row.source, row.version)


def listing(sess: Session) -> list[ListedVersion]:
    """Every stored version, newest first, then the shipped file; which one is in force."""
    rows = sess.scalars(select(CatalogVersion).order_by(CatalogVersion.version.desc())).all()
    active = _active_row(sess)
    out = []
    for row in rows:
        cat = _parsed(row.source, row.version)
        is_active = active is not None and row.version == active.version
        out.append(
            ListedVersion(
                row.version,
                cat.currency,
                len(cat.items),
                row.added_by,
                row.added_at,
                row.activated_at,
                is_active,
                False,
            )
        )
    shipped = catalog.default()
    out.append(
        ListedVersion(
            shipped.version, shipped.currency, len(shipped.items), None, None, None, active is None, True
        )
    )
    return out


def add(sess: Session, *, source: str, by: Actor, now: datetime, name: str = "catalog") -> catalog.Catalog:
    """Check a catalog's YAML as the file is checked and store it as a new, inactive version; audited.

    Raises `catalog.CatalogFileError` (every problem with its line) or `Conflict` for a version number
    that is taken (by a stored version or the shipped file)."""
    if len(source) > MAX_SOURCE:
        raise errors.InvalidInput(f"a catalog may have at most {MAX_SOURCE:,} characters")
    cat = catalog.parse(source, source=name)  # problems named `name:LINE`
    if cat.version == catalog.default().version or sess.get(CatalogVersion, cat.version) is not None:
        raise _taken(cat.version)
    try:
        with sess.begin_nested():  # a refused insert leaves the caller's transaction usable
            sess.add(CatalogVersion(version=cat.version, source=source, added_by=by.name, added_at=now))
    except IntegrityError:  # the same number added at the same moment by another request
        raise _taken(cat.version) from None
    data = {"currency": cat.currency, "items": [item.key for item in cat.items]}
    log_event(sess, "catalog", cat.version, "catalog_added", by, data, now)
    return cat


def _taken(version: int) -> Conflict:
    return Conflict(f"catalog version {version} exists already: choose a version number not used yet")


def activate(sess: Session, *, version: int, by: Actor, now: datetime) -> catalog.Catalog:
    """Put a stored version in force for new offers from now on; audited with the version it replaces."""
    row = sess.get(CatalogVersion, version)
    if row is None:
        raise errors.NotFound(f"catalog version {version} not found")
    before = in_force(sess).version
    row.activated_at = now
    sess.flush()
    log_event(
        sess,
        "catalog",
        version,
        "catalog_activated",
        by,
        {},
        now,
        before={"version": before},
        after={"version": version},
    )
    return _parsed(row.source, row.version)
