"""Real services for tests: a Mosquitto broker per test and a fresh PostgreSQL database per test."""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

# The broker and port helpers serve the benchmarks too, which may not import tests.
from benchmarks.services import (  # noqa: F401
    Mosquitto,
    connections_by_pid,
    free_port,
    listeners,
    mosquitto_available,
    wait_port,
)
from fleet import migrate, partitions
from fleet.db import make_engine
from fleet.tables import Base
from tests import drop_watch

# A DROP DATABASE waits for the checkpoint it forces: about a second, but on the shared server under load
# one took 86 s (fsyncing the 37,437 files of the databases created since the one before), and a drop that
# comes while one runs waits for two: in a clean-clone CI run alone, 41 s and then 84 s (43,578 files), and
# the drops were cancelled at 120 s, 5 s before their checkpoint ended. A drop still waiting after this
# long is cancelled and says what it waited for, before pytest's 300 s timeout would stop the run silently.
DROP_WAIT_S = 240.0
DROP_WORKERS = 4  # an admin session each while it drops: the server's slots are shared by every run
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_ADMIN_URL = os.environ.get(
    "SERVICECAST_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)


def shipped_auth(config: Path, workdir: Path) -> list[str]:
    """The authentication lines of a shipped Mosquitto config, with their files looked up in `workdir`."""
    keep = []
    for line in config.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key in ("password_file", "acl_file"):
            keep.append(f"{key} {workdir / Path(value).name}")
        elif key == "allow_anonymous":
            keep.append(line)
    return keep


@contextmanager
def migrated_engine(url: str) -> Iterator[Engine]:
    """An engine on the database at `url`, migrated to the head, disposed of at the end."""
    engine = make_engine(url)
    migrate.ensure_schema(engine)  # most are copies of a migrated template: Alembic's no-op costs ~20 ms
    yield engine
    engine.dispose()


def unavailable(what: str) -> None:
    """Skip on a developer machine without the service; fail in CI, where it must run."""
    if IN_CI:
        pytest.fail(f"{what} is required when CI=true", pytrace=False)
    pytest.skip(f"{what} not available")


class DropFailed(RuntimeError):
    """A test database's DROP DATABASE failed or was given up."""


class PostgresDatabase:
    """A database of its own for one test, dropped afterwards."""

    def __init__(self, prefix: str = "sc_test") -> None:
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.drop_wait_s = DROP_WAIT_S
        self.admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.url = make_url(POSTGRES_ADMIN_URL).set(database=self.name).render_as_string(hide_password=False)

    def create(self, template: str | None = None) -> PostgresDatabase:
        """CREATE DATABASE, empty or as a copy of the database named `template`."""
        copy = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"{copy}'))
            # A commit then returns before its WAL reaches the disk: behind the fsyncs of the checkpoints
            # the drops force that wait was 1.4–6.3 ms, 0.7 ms without. Only a crash of the server could lose
            # such a commit, and no test crashes it. A database's settings are not copied by TEMPLATE.
            conn.execute(text(f'ALTER DATABASE "{self.name}" SET synchronous_commit = off'))
        self.admin.dispose()  # no idle admin session for the test's whole run: the server's slots are few
        return self

    def execute(self, sql: str) -> None:
        """Run admin SQL (e.g. ALTER DATABASE) on the server."""
        with self.admin.connect() as conn:
            conn.execute(text(sql.replace("{db}", f'"{self.name}"')))

    def terminate_connections(self) -> None:
        """Cut every session to this database (as a failover or restart would)."""
        self.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.name}' "
            "AND pid <> pg_backend_pid()"
        )

    def drop(self) -> None:
        """DROP DATABASE, cutting its sessions; one still waiting after `drop_wait_s` is cancelled and raises
        DropFailed, which says what it waited for."""
        with self.admin.connect() as conn:
            # FORCE (PostgreSQL 13+) cuts sessions after the drop holds the database's lock, so a session
            # that reconnects after our own cut (a pool) no longer fails the drop after 5 s.
            force = conn.dialect.server_version_info >= (13,)
            if not force:
                self.terminate_connections()
            with drop_watch.Watchdog(self.admin, conn, self.name, self.drop_wait_s) as watch:
                try:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}"{" WITH (FORCE)" * force}'))
                except DBAPIError as exc:
                    raise DropFailed(
                        f'DROP DATABASE "{self.name}": {exc.orig}{watch.found or watch.look()}'
                    ) from exc
        self.admin.dispose()


class BackgroundDrops:
    """DROP DATABASE waits for a checkpoint (a second, a minute under load); worker threads drop while the
    next tests run, several at once since drops waiting at the same time share the next checkpoint."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=DROP_WORKERS, thread_name_prefix="drop-database")
        self.pending: list[Future] = []

    def drop(self, db: PostgresDatabase) -> None:
        """Cut the database's sessions now (a test's leftovers must not outlive it) and drop it later."""
        db.terminate_connections()
        db.admin.dispose()  # a drop waiting its turn holds no connection
        self.pending.append(self.pool.submit(db.drop))

    def finish(self) -> None:
        """Wait for every drop; a failed one raises."""
        self.pool.shutdown(wait=True)
        for future in self.pending:
            future.result()


class MigratedTemplates:
    """A database per backend migrated to the head once per session; tests that want one migrated get a copy.

    Running 22 migrations cost 0.2 s per SQLite test and 0.7 s per PostgreSQL test; a copy costs a file copy
    or a CREATE DATABASE … TEMPLATE. The migrations themselves are tested in tests/fleet/test_migrations.py.
    """

    def __init__(self, workdir: Path) -> None:
        self.sqlite_file = workdir / "migrated.db"
        self.postgres_db: PostgresDatabase | None = None

    def copy_sqlite(self, path: Path) -> None:
        """Write a migrated SQLite database to `path`."""
        if not self.sqlite_file.exists():
            with migrated_engine(f"sqlite:///{self.sqlite_file}"):
                pass
            # The last connection's close checkpoints the WAL into the file: the file alone is the database.
            assert not self.sqlite_file.with_name(f"{self.sqlite_file.name}-wal").exists()
        shutil.copyfile(self.sqlite_file, path)

    def postgres(self) -> str:
        """The name of a migrated PostgreSQL database to copy with CREATE DATABASE … TEMPLATE."""
        if self.postgres_db is None:
            db = PostgresDatabase("sc_template").create()
            with migrated_engine(db.url):
                pass  # the engine is disposed of: a template must have no sessions when it is copied
            self.postgres_db = db
        return self.postgres_db.name

    def drop(self) -> None:
        """Drop the PostgreSQL template, if one was made."""
        if self.postgres_db is not None:
            self.postgres_db.drop()


def postgres_available() -> bool:
    """Whether the test PostgreSQL server answers."""
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


def waiting_on_lock(engine: Engine, *events: str) -> int:
    """How many sessions of this PostgreSQL database wait for a lock (of one of these wait events, if any
    are given: 'advisory', 'transactionid', 'tuple', 'relation', ...); 0 is none."""
    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    if events:
        query += " AND wait_event = ANY(:events)"
    with engine.connect() as conn:
        return conn.scalar(text(query), {"events": list(events)} if events else {})


def other_sessions_busy(engine: Engine) -> bool:
    """Whether another session of this PostgreSQL database is running a statement or holds a transaction open.

    A client killed with SIGKILL leaves its backend running: a COMMIT it had sent still completes, after the
    kill, and the backend ends only when it reads the closed socket.
    """
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction', "
        "'idle in transaction (aborted)')"
    )
    with engine.connect() as conn:
        return bool(conn.scalar(text(query)))


def waiting_on_advisory_lock(engine: Engine) -> bool:
    """Whether some session of this PostgreSQL database waits for an advisory lock."""
    return waiting_on_lock(engine, "advisory")


# Expression indexes alembic cannot compare (SQLite does not reflect them, PostgreSQL gives their text back
# with casts): their tests check what they refuse (tests/sales/test_subscription_index_migration.py).
UNCOMPARED_INDEXES = {"uq_notification_subscriptions_in_force"}


def schema_differences(conn) -> list:
    """What alembic finds between the migrated database and the ORM tables; telemetry's partitions aside."""
    opts = {
        "compare_type": True,
        # telemetry's partitions (PostgreSQL) are not tables of their own to the ORM
        "include_name": lambda name, kind, _: kind != "table" or not partitions.is_partition(name),
        "include_object": lambda _obj, name, kind, *_: kind != "index" or name not in UNCOMPARED_INDEXES,
    }
    with warnings.catch_warnings():  # SQLite's reflection and alembic each warn that they skip those
        for name in UNCOMPARED_INDEXES:
            warnings.filterwarnings("ignore", message=f".*expression-based index '?{name}")
        return compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
