"""A child process that erases a customer and fails at a chosen step, for real: `rm` killed (SIGKILL) at its
first archive file removal, `scrub` killed at its first rewrite of an audit line (before the erasure ledger's
entry), `delete` killed once its transaction has deleted the customer's row, `commit` its
transaction's commit refused (SQLite: no file may grow, RLIMIT_FSIZE 0, as on a full disk; PostgreSQL: its
server process terminated, as when the server restarts)."""

from __future__ import annotations

import os
import resource
import signal
import sys
from datetime import UTC, datetime

from sqlalchemy import Engine, create_engine, event, text

from fleet import archive, erasure
from fleet.db import make_engine


def main(database_url: str, archive_url: str, tenant: str, at: str = "rm") -> None:
    engine = make_engine(database_url)
    if at == "rm":
        fs = archive.location(archive_url).fs  # the cached filesystem erasure removes the files through
        fs.rm = lambda *_args, **_kwargs: os.kill(os.getpid(), signal.SIGKILL)
    else:
        _fail_after(engine, at)
    try:
        erasure.erase(
            engine,
            tenant=tenant,
            confirm=tenant,
            by="cli:test",
            archive_url=archive_url,
            now=datetime.now(UTC),
        )
    except Exception as exc:  # what the command would print
        print("; ".join([f"failed: {type(exc).__name__}: {exc}", *getattr(exc, "__notes__", ())]))


# The statement after which `at` kills the child (`commit`: the one whose transaction's commit fails).
_AFTER = {
    "scrub": "UPDATE WORKFLOW_EVENTS",
    "delete": "DELETE FROM CUSTOMERS",
    "commit": "DELETE FROM CUSTOMERS",
}


def _fail_after(engine: Engine, at: str) -> None:
    """SIGKILL after the statement `_AFTER` names, or (`commit`) refuse the commit of its transaction."""
    deleted = []

    @event.listens_for(engine, "after_cursor_execute")
    def _executed(conn, cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith(_AFTER[at]):
            if at != "commit":
                os.kill(os.getpid(), signal.SIGKILL)
            deleted.append(conn)

    @event.listens_for(engine, "commit")
    def _committing(conn) -> None:
        if conn not in deleted or at != "commit":
            return
        if engine.dialect.name == "sqlite":
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not the signal's kill
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
            return
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with create_engine(engine.url).connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


if __name__ == "__main__":
    main(*sys.argv[1:])
