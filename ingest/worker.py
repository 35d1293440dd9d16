"""The writer process: parses, checks and stores batches that the receiving process hands over.

The receiving process runs paho's network thread and a thread that passes each batch as one pickled buffer
through a pipe, waits for the commit, then acks. Everything per message beyond receiving (contract checks,
rows, SQL, quarantine, Sparkplug decoding) runs here, on its own core and its own GIL.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleet import subprocesses, telemetry
from fleet.db import Keepalive, make_engine
from ingest import metrics
from ingest.contract import Limits
from ingest.pipeline import Pipeline, RawMessage
from ingest.writer import Committed, Committer

if TYPE_CHECKING:
    from ingest.sparkplug.mapping import Mapping

log = logging.getLogger(__name__)

# Forked, so that it starts at once and inherits the logging setup. The receiving process starts its writer
# before its network and metrics threads (see Ingester.start); the writer opens database connections of its
# own and never touches the inherited ones, which stay with the receiver.
_CONTEXT = multiprocessing.get_context("fork")


class WriterDied(RuntimeError):
    """The writer process is gone; nothing it had not answered was committed for sure or acked."""


@dataclass(frozen=True)
class Recipe:
    """What a writer needs to build its pipeline, on an engine of its own or on one it is given."""

    database_url: str
    auto_register: bool = False
    limits: Limits = Limits()
    keep_bytes: int = 1024
    retry_max_s: float = 10.0
    give_up_s: float = 10.0
    sparkplug: tuple[Mapping, str, float] | None = None  # a Sparkplug host's map, id and rebirth interval (s)
    keepalive: Keepalive = Keepalive()

    def pipeline(self, engine=None):
        """The JSON pipeline, or the Sparkplug one around it; on `engine`, or on a new one from the URL."""
        engine = (
            engine
            if engine is not None
            else telemetry.tune_writer(make_engine(self.database_url, keepalive=self.keepalive))
        )
        pipeline = Pipeline(
            engine=engine, auto_register=self.auto_register, limits=self.limits, keep_bytes=self.keep_bytes
        )
        if self.sparkplug is None:
            return pipeline
        from ingest.sparkplug.pipeline import SparkplugPipeline  # only a Sparkplug host pays its imports

        mapping, host_id, interval_s = self.sparkplug
        return SparkplugPipeline(
            pipeline=pipeline, mapping=mapping, host_id=host_id, rebirth_interval_s=interval_s
        )

    def committer(self, engine=None) -> Committer:
        """A committer in this process."""
        return Committer(
            pipeline=self.pipeline(engine), retry_max_s=self.retry_max_s, give_up_s=self.give_up_s
        )


class WriterProcess:
    """A `Committer` in a process of its own, with the same interface (`start`, `commit`, `alive`, …)."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self._stop = _CONTEXT.Event()
        self._conn = None
        self._process = None

    @property
    def pid(self) -> int | None:
        """The writer process's id once started."""
        return self._process.pid if self._process else None

    @property
    def alive(self) -> bool:
        """Whether the process runs, or has not been started yet."""
        return self._process is None or self._process.is_alive()

    def start(self) -> None:
        """Fork the writer process."""
        # The pipe is made here, not earlier, so that no other writer forked meanwhile inherits its ends.
        self._conn, child = _CONTEXT.Pipe()
        self._process = _CONTEXT.Process(
            target=_serve,
            args=(child, self._conn, self.recipe, self._stop, os.getpid()),
            name="servicecast-writer",
            daemon=True,
        )
        self._process.start()
        # Only the child holds its end from now on, so that its exit reads as EOF here.
        child.close()

    def commit(self, messages: Sequence[RawMessage]) -> Committed:
        """Hand the batch over as one buffer and wait for its commit."""
        try:
            self._conn.send_bytes(pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL))
            return pickle.loads(self._conn.recv_bytes())
        except (EOFError, OSError) as exc:
            self._process.join(1)
            raise WriterDied(f"the writer process exited (exit code {self._process.exitcode})") from exc

    def begin_stop(self) -> None:
        """A database that stays away makes the writer give up after its `give_up_s` from now on."""
        self._stop.set()

    def close(self, timeout: float | None = None) -> None:
        """Tell the writer to exit (an empty message) and wait for it."""
        if self._process is None:
            return
        try:
            # Not only closing our end: a writer forked later by another ingester here holds a copy of it.
            self._conn.send_bytes(b"")
        except OSError:
            pass  # gone already
        self._conn.close()
        self._process.join(timeout if timeout is not None else 30)
        if self._process.is_alive():
            log.error("the writer process did not exit; terminating it")
            self._process.terminate()
            self._process.join(5)


def _serve(conn, receiver_end, recipe: Recipe, stop, receiver_pid: int) -> None:
    """The writer process: answer each batch with what committing it did, until the pipe closes."""
    # Killed with the receiving process, as a writer thread would be: a kill -9 of the ingester stops its
    # commits at once. `Ingester.start` forks from a thread that lives as long as the ingester.
    subprocesses.die_with_parent(receiver_pid, signal.SIGKILL)
    receiver_end.close()  # inherited by fork; only the receiver holds it, so that its exit reads as EOF here
    # The receiving process decides when to stop; a terminal's Ctrl-C reaches the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the receiver's graceful handler, inherited by fork
    committer = recipe.committer()
    # Give up retrying a database that stays away when asked to stop, or when the receiver is gone (EOF).
    committer.stopping = lambda: stop.is_set() or conn.poll()
    undeclared = metrics.UNDECLARED_CODES._value  # noqa: SLF001 - relayed to the receiver's metric
    try:
        while True:
            try:
                data = conn.recv_bytes()
            except EOFError:
                return
            if not data:
                return  # asked to exit
            before = undeclared.get()
            committed = committer.commit(pickle.loads(data))
            committed.undeclared = int(undeclared.get() - before)
            conn.send_bytes(pickle.dumps(committed, protocol=pickle.HIGHEST_PROTOCOL))
    except (BrokenPipeError, ConnectionResetError):
        log.warning("the receiving process is gone; its unacknowledged messages will be redelivered")
    except BaseException:
        log.exception("the writer process failed (pid %d)", os.getpid())
        raise
    finally:
        committer.pipeline.engine.dispose()
