"""Start-up of every command-line process: settings, the engine, exit codes, a loop until SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from fleet import errors
from fleet.redaction import redact_url
from fleet.settings import EXIT_BAD_SETTING, Settings, describe_error, get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

# Alembic, the ORM and fleet.db are imported where an engine is opened, not here: `servicecast --help` and
# `check-config` import this module and need none of them.

log = logging.getLogger(__name__)
EXIT_ERROR = 1  # the command was refused (e.g. exists already), or its loop ended unasked or got stuck
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as a shell reports it
CHATTY_LOGGERS = ("amqtt", "transitions", "alembic", "asyncua")
# How long a loop may take to stop once asked. The router looks at `stop` between deliveries, and one
# delivery is bounded by its lease (3 × SERVICECAST_ROUTE_TIMEOUT_S + 5 s, 35 s by default); the policy loop
# between passes. A loop still running after this is stuck: the process leaves without it.
STOP_GRACE_S = 60.0


def fail(message: object, *, code: int = EXIT_BAD_SETTING, prog: str = "servicecast") -> SystemExit:
    """Print `prog: message` as one stderr line and return the exit to raise."""
    print(f"{prog}: {message}", file=sys.stderr)
    return SystemExit(code)


def load_settings(*, prog: str = "servicecast") -> Settings:
    """Validated settings with logging set up, or exit 2 with one line naming the bad variable."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        raise fail(describe_error(exc), prog=prog) from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if settings.log_level != "DEBUG":
        for chatty in CHATTY_LOGGERS:
            logging.getLogger(chatty).setLevel(logging.WARNING)
    return settings


def ready_engine(settings: Settings) -> Engine:
    """The engine, with migrations applied (every process brings the schema up to date on start)."""
    from fleet import migrate

    engine = open_engine(settings)
    with migration_errors(settings):
        migrate.ensure_schema(engine)
    return engine


def serving_engine(settings: Settings, *, process: str) -> Engine:
    """`ready_engine` for a command that reads or writes customer data (serves, scores, alerts on, routes,
    trains on, imports, replays, exports them): exit 1 with one line while the database holds a customer the
    archive's erasure ledger lists as erased (a backup)."""
    from fleet import erasure_ledger

    engine = ready_engine(settings)
    try:
        erasure_ledger.check_start(engine, settings.archive_url, process=process)
    except errors.ErasureUndone as exc:
        engine.dispose()
        raise fail(exc, code=EXIT_ERROR) from None
    return engine


@contextmanager
def migration_errors(settings: Settings) -> Iterator[None]:
    """Alembic's refusal (a revision unknown here, e.g. from a newer servicecast) as one line and exit 1."""
    from fleet import migrate

    try:
        yield
    except Exception as exc:
        from alembic.util import CommandError  # only now: a database at head is checked without Alembic

        if not isinstance(exc, CommandError):
            raise
        message = f"cannot migrate the database {database_setting(settings)}: {exc}"
        raise fail(
            f"{message} (this code's newest revision is {migrate.head_revision()})", code=EXIT_ERROR
        ) from None


def open_engine(settings: Settings) -> Engine:
    """The engine, connected once: a database that cannot be opened (server down, login refused, not a
    database file, a folder that cannot be made) exits 1 with one line naming it and why, not a traceback."""
    from fleet.db import engine_from_settings

    try:
        engine = engine_from_settings(settings)
        with engine.connect():
            pass
    except (DBAPIError, OSError) as exc:
        raise database_failure(settings, exc, doing="open") from None
    return engine


def database_failure(settings: Settings, exc: Exception, *, doing: str) -> SystemExit:
    """`cannot DOING the database SERVICECAST_DATABASE_URL=…: why` as one line; the exit 1 to raise."""
    line = f"cannot {doing} the database {database_setting(settings)}: {errors.reason(exc)}"
    return fail(with_notes(line, exc), code=EXIT_ERROR)


def with_notes(line: str, exc: BaseException) -> str:
    """`line`, then the notes added to `exc` on its way up (e.g. which retention steps were done)."""
    return "; ".join([line, *getattr(exc, "__notes__", ())])


def database_setting(settings: Settings) -> str:
    """`SERVICECAST_DATABASE_URL=…` with the password redacted: where an error line says the database is."""
    return f"SERVICECAST_DATABASE_URL={redact_url(settings.database_url)}"


@contextmanager
def database_errors(settings: Settings, *, doing: str) -> Iterator[None]:
    """A database that refuses a connection or goes away mid-command as one line and exit 1, no traceback;
    the open transaction is rolled back by the server."""
    try:
        yield
    except DBAPIError as exc:
        raise database_failure(settings, exc, doing=doing) from None


@contextmanager
def engine_for(settings: Settings, *, process: str | None = None) -> Iterator[Engine]:
    """`ready_engine` (`serving_engine` for a `process`), disposed when the block ends."""
    engine = ready_engine(settings) if process is None else serving_engine(settings, process=process)
    try:
        yield engine
    finally:
        engine.dispose()


def run_until_stopped(
    loop: Callable[[threading.Event], None], *, name: str, grace_s: float = STOP_GRACE_S
) -> int:
    """Run `loop(stop)` in a thread until SIGTERM or SIGINT sets `stop`: 0 then, 1 if the loop ended first
    or did not end within `grace_s` of the signal."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    worker = threading.Thread(target=loop, args=(stop,), name=name, daemon=True)
    try:
        worker.start()
        while worker.is_alive() and not stop.is_set():
            worker.join(0.5)
        worker.join(grace_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if worker.is_alive():
        # A daemon thread: the process exits without it, leaving nothing behind that looks alive.
        frame = sys._current_frames().get(worker.ident)  # where it waits, for the log
        where = "".join(traceback.format_stack(frame)) if frame else "(no stack)"
        log.error(
            "%s did not stop within %.0f s of being asked; exiting %d with it still in:\n%s",
            name,
            grace_s,
            EXIT_ERROR,
            where,
        )
        return EXIT_ERROR
    if stop.is_set():
        return 0
    # A process that looks alive but does nothing is the worst failure: leave, so a supervisor restarts it.
    log.error("%s ended without being asked to; exiting %d", name, EXIT_ERROR)
    return EXIT_ERROR
