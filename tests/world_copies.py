"""build_world's worlds, built once per process and settings and then copied: SQLite as a file, PostgreSQL
with CREATE DATABASE … TEMPLATE.

A world costs about 0.3 s of CPU to build on SQLite and 0.5 s on PostgreSQL (an app's start, the users, the
policy's pass); a copy costs a file copy or a CREATE DATABASE. A copy is made only where it is exact: the
target is as it was when the world was first built (a SQLite file absent or of the same bytes, e.g. a copy of
the migrated database; a PostgreSQL database not yet made, left to `build_world` by the `database_url`
fixture), and the world is recent.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import shutil
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from fleet.db import engine_from_settings
from tests import services

if TYPE_CHECKING:
    from tests.api.support import World

# Rows stamped with the code's clock (users, keys, audit) are up to this much older in a copy than in a build.
MAX_AGE_S = 120.0


@dataclass(frozen=True)
class _Built:
    before: str  # the target before the world was built in it: a file's digest, or the PostgreSQL template
    source: Path | services.PostgresDatabase
    ids: dict[str, object]  # the World's ids and tokens, as built
    at: float


@dataclass
class Claim:
    """What `claim` found: whether the world is a copy, and else how to keep it once built."""

    url: str
    key: tuple[str, str]
    before: str | None
    copied: bool

    def keep(self, world: World) -> None:
        """Keep a copy of the world just built (its engine disposed of) for the next build like it."""
        if self.before is None or self.key not in _seen:
            _seen.add(self.key)  # kept at its second build: many a world's settings name the test's folder
            return
        path = _sqlite_path(self.url)
        if path is not None:
            if _sidecars(path):
                return
            source = _folder() / f"world-{time.monotonic_ns()}.db"
            shutil.copyfile(path, source)
        else:
            try:
                source = services.PostgresDatabase("sc_world").create(template=make_url(self.url).database)
            except DBAPIError:  # a session of the app still open: no copy, the next world is built
                return
        ids = {f.name: copy.deepcopy(getattr(world, f.name)) for f in fields(world) if f.name not in _OWN}
        _forget(_built.pop(self.key, None))
        _built[self.key] = _Built(self.before, source, ids, time.monotonic())


_OWN = ("settings", "engine")
_built: dict[tuple[str, str], _Built] = {}
_seen: set[tuple[str, str]] = set()
_deferred: dict[str, tuple[services.PostgresDatabase, str | None]] = {}
_folders: list[Path] = []
_drops: list[services.BackgroundDrops] = []


def defer(db: services.PostgresDatabase, template: str | None) -> None:
    """Leave the CREATE DATABASE of a test's database, from `template`, to `build_world`."""
    _deferred[db.url] = (db, template)


def _make(url: str) -> None:
    """Make a deferred database as it was asked for, if nothing made it yet."""
    pending = _deferred.pop(url, None)
    if pending is not None:
        pending[0].create(template=pending[1])


def discard(url: str) -> None:
    """Forget a deferred database nothing made."""
    _deferred.pop(url, None)


def claim(world: World, url: str, settings: dict[str, object]) -> Claim:
    """Make the unbuilt `world` on `url` a copy of one built before with these settings if one fits."""
    _expire()
    key = (make_url(url).get_backend_name(), repr(sorted(settings.items())))
    found = Claim(url, key, _before(url), copied=False)
    built = _built.get(found.key)
    if found.before is None or built is None or built.before != found.before:
        _make(url)
        return found
    if isinstance(built.source, Path):
        shutil.copyfile(built.source, _sqlite_path(url))
    else:
        _deferred.pop(url)[0].create(template=built.source.name)
    from api import auth  # here: tests/conftest.py imports this module, and not every test needs the api

    # A copy has the API keys of the world it was copied from: a key cached for that one is looked up anew.
    auth.principals.clear()
    for name, value in copy.deepcopy(built.ids).items():
        setattr(world, name, value)
    world.engine = engine_from_settings(world.settings)
    found.copied = True
    return found


def close() -> None:
    """Drop the kept PostgreSQL worlds and delete the SQLite ones; wait for every drop."""
    for key in list(_built):
        _forget(_built.pop(key))
    for drops in _drops:
        drops.finish()
    _drops.clear()
    for folder in _folders:
        shutil.rmtree(folder, ignore_errors=True)
    _folders.clear()


def _before(url: str) -> str | None:
    if url in _deferred:
        return f"postgres:{_deferred[url][1]}"
    path = _sqlite_path(url)
    if path is None or _sidecars(path):
        return None  # an existing PostgreSQL database, or a SQLite file written to and not checkpointed
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def _expire() -> None:
    now = time.monotonic()
    for key in [key for key, built in _built.items() if now - built.at > MAX_AGE_S]:
        _forget(_built.pop(key))


def _forget(built: _Built | None) -> None:
    if built is None:
        return
    if isinstance(built.source, Path):
        built.source.unlink(missing_ok=True)
        return
    if not _drops:
        _drops.append(services.BackgroundDrops())
    _drops[0].drop(built.source)


def _folder() -> Path:
    if not _folders:
        _folders.append(Path(tempfile.mkdtemp(prefix="sc-worlds-")))
        atexit.register(shutil.rmtree, _folders[0], ignore_errors=True)  # a session without `close`
    return _folders[0]


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:") or parsed.query:
        return None
    return Path(parsed.database)


def _sidecars(path: Path) -> bool:
    return any(path.with_name(path.name + end).exists() for end in ("-wal", "-shm", "-journal"))
