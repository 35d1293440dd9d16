"""Database engines and sessions for SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

WRITE_LOCK_OPTION = "servicecast_write_lock"
# A writer waiting for SQLite's write lock polls it, every 100 ms once it has waited a while (SQLite's
# busy handler): a shorter gap between one pass's transactions can starve it past its busy timeout.
WRITER_GAP_S = 0.1
# Address space, not memory: mapped pages are the OS page cache, shared by every connection and process.
READ_MMAP_BYTES = 2**30


@dataclass(frozen=True)
class Keepalive:
    """TCP keepalives of PostgreSQL connections: probes after `idle_s` quiet seconds, `count` of them."""

    idle_s: int = 60
    interval_s: int = 10
    count: int = 6

    @classmethod
    def from_settings(cls, settings) -> Keepalive:
        """The keepalives the SERVICECAST_DATABASE_KEEPALIVE_* settings ask for."""
        return cls(
            settings.database_keepalive_idle_s,
            settings.database_keepalive_interval_s,
            settings.database_keepalive_count,
        )

    def connect_args(self, url_query) -> dict[str, int]:
        """libpq parameters for what the URL's query does not set itself."""
        wanted = {
            "keepalives": 1,
            "keepalives_idle": self.idle_s,
            "keepalives_interval": self.interval_s,
            "keepalives_count": self.count,
        }
        return {name: value for name, value in wanted.items() if name not in url_query}


def make_engine(
    url: str, *, busy_timeout_ms: int = 5000, read_only: bool = False, keepalive: Keepalive = Keepalive()
) -> Engine:
    """An engine tuned for a write-heavy ingester on either backend.

    `read_only` gives an engine for short reads: every statement runs in autocommit (no BEGIN and no
    ROLLBACK around it, which cost more than an indexed lookup) and the database refuses writes.
    """
    parsed = make_url(url)
    # A read-only engine never opens a transaction, so returning a connection needs no rollback.
    reset = {"pool_reset_on_return": None} if read_only else {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Sized to FastAPI's thread pool (40): overflow connections would be opened and closed per request.
        # Read connections last in, first out: each maps the file and caches pages of its own, so the
        # few that a worker keeps busy stay warm instead of taking turns with forty cold ones.
        lifo = {"pool_use_lifo": True} if read_only else {}
        engine = create_engine(
            url,
            connect_args={"timeout": busy_timeout_ms / 1000},
            pool_size=40,
            max_overflow=10,
            **reset,
            **lifo,
        )
        _tune_sqlite(engine, busy_timeout_ms, read_only)
        return engine
    # Without keepalives a connection that a NAT dropped silently blocks its reader for the kernel's hours.
    connect_args: dict[str, object] = keepalive.connect_args(parsed.query)
    if read_only:
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=5,
            isolation_level="AUTOCOMMIT",
            connect_args={**connect_args, "options": "-c default_transaction_read_only=on"},
            **reset,
        )
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args)


def _tune_sqlite(engine: Engine, busy_timeout_ms: int, read_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Let SQLAlchemy issue BEGIN itself so that transactions are explicit and serialisable.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
            # Pages straight from the OS cache instead of a read() copy each: a chart window's rows lie on
            # ~1,000 scattered pages, and the copies were a third of its fetch (docs/benchmarks.md).
            cursor.execute(f"PRAGMA mmap_size={READ_MMAP_BYTES}")
        cursor.close()

    if read_only:
        return  # without BEGIN, each statement is its own transaction and sees the latest commit

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        immediate = conn.get_execution_options().get(WRITE_LOCK_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def for_writing(engine: Engine) -> Engine:
    """The engine for a transaction that reads, then writes: on SQLite it takes the write lock at BEGIN.

    A deferred SQLite transaction that read first cannot upgrade to a write once another connection has
    committed meanwhile: it fails at once with "database is locked", the busy timeout never applies.
    Taking the lock up front waits (up to the busy timeout) instead. PostgreSQL ignores the option.
    """
    return engine.execution_options(**{WRITE_LOCK_OPTION: True})


def give_way(engine: Engine) -> None:
    """Between two write transactions of a long pass: on SQLite, let a waiting writer (ingest) take its turn.

    SQLite queues nobody for its write lock; without a gap, a pass that begins its next transaction at once
    keeps the lock for its whole run however short each transaction is. PostgreSQL locks rows, not the
    database: nothing to wait for.
    """
    if engine.dialect.name == "sqlite":
        time.sleep(WRITER_GAP_S)


def engine_from_settings(settings, *, read_only: bool = False) -> Engine:
    """The engine that the settings name."""
    return make_engine(
        settings.database_url,
        busy_timeout_ms=settings.database_busy_timeout_ms,
        read_only=read_only,
        keepalive=Keepalive.from_settings(settings),
    )


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """A session that commits on success, rolls back on error and always closes."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as sess:
        try:
            yield sess
            sess.commit()
        except BaseException:
            sess.rollback()
            raise
