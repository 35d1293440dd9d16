"""The demo's database, opened before the demo's own imports: a database put back from before an erasure is
refused without the ~2 CPU-s that importing models and the API take (docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from fleet import bootstrap
from fleet.settings import Settings


def opened(settings: Settings) -> tuple[Engine, bool]:
    """The demo's engine (`bootstrap.serving_engine`), and whether its database is new for this run."""
    fresh = _fresh_database(settings)
    return bootstrap.serving_engine(settings, process="demo"), fresh


def _fresh_database(settings: Settings) -> bool:
    """Delete the default SQLite file so each run starts clean; a configured database is never touched."""
    if "database_url" in settings.model_fields_set:
        return False
    path = Path(make_url(settings.database_url).database or "")
    if not path.name:
        return False
    for stale in (path, *(path.with_name(path.name + tail) for tail in ("-wal", "-shm", "-journal"))):
        stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return True
