"""SQLite commits that survive a power cut: the ingester acknowledges a message to the broker once its commit
returns, and the archive removes or registers files after its commits, so a returned commit is on disk."""

from __future__ import annotations

from fleet.db import make_engine

FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL (WAL: a power cut may take back the last commits), 2 FULL


def test_a_writing_sqlite_engine_syncs_each_commit(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'servicecast.db'}")  # SQLite's pragma: no PostgreSQL case
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == FULL
    finally:
        engine.dispose()
