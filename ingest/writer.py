"""The writer: batches envelopes by size and time, commits them, then lets them be acknowledged.

`Committer` writes one batch (retrying while the database is away); `BatchWriter` is the thread that feeds it
from the queue and acks what it committed. The committer runs in this process or in a writer process of its
own (`ingest.worker.WriterProcess`, same interface), so that the process that receives does little else.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import (
    DataError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from fleet import telemetry
from ingest import metrics
from ingest.inbox import Inbox
from ingest.pipeline import Pipeline, RawMessage, quarantine_row
from ingest.schemas import Envelope, Outcome, Rejection

log = logging.getLogger(__name__)

# Flush early when the stream pauses this long: a small broker in-flight window must not cost a full linger.
IDLE_FLUSH_S = 0.01
# The database is away, locked or read-only (a failover): retry the whole batch, acknowledge nothing.
UNAVAILABLE = (OperationalError, InterfaceError, InternalError, DisconnectionError, PoolTimeout)
DATA_ERRORS = (IntegrityError, DataError)


def error_kinds(dbapi) -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(unavailable, refused) errors as SQLAlchemy wraps them and as the driver raises them below it."""
    return (
        (*UNAVAILABLE, dbapi.OperationalError, dbapi.InterfaceError, dbapi.InternalError),
        (*DATA_ERRORS, dbapi.IntegrityError, dbapi.DataError),
    )


@dataclass
class WriterStats:
    """Running totals, for logs, tests and the demo."""

    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    batches: int = 0
    db_errors: int = 0
    rebirths: int = 0


@dataclass(slots=True)
class Committed:
    """What committing one batch did: its outcome (None when stopping gave up), time and failed tries."""

    outcome: Outcome | None
    seconds: float = 0.0
    db_errors: int = 0
    undeclared: int = 0  # undeclared event codes counted in a writer process, for this process's metric


class Committer:
    """Writes one batch in one transaction, retrying while the database is away; one message that fails
    on its own is quarantined and the rest of its batch stored."""

    def __init__(self, *, pipeline: Pipeline, retry_max_s: float = 10.0, give_up_s: float = 10.0) -> None:
        self.pipeline = pipeline
        self.retry_max_s = retry_max_s
        self.give_up_s = give_up_s
        self._unavailable, self._refused = error_kinds(pipeline.engine.dialect.dbapi)
        self._stop = threading.Event()
        # Whether to give up after `give_up_s` (a writer process also asks whether its receiver is gone).
        self.stopping: Callable[[], bool] = self._stop.is_set

    alive = True

    def start(self) -> None:
        """Nothing to start in this process."""

    def begin_stop(self) -> None:
        """From now on a database that stays away makes `commit` give up after `give_up_s`."""
        self._stop.set()

    def close(self, timeout: float | None = None) -> None:
        """Nothing to close in this process."""

    def commit(self, messages: Sequence[RawMessage]) -> Committed:
        """Commit the batch, retrying while the database refuses; outcome None only when stopping gave up."""
        delay, give_up_at, failures = 0.05, None, 0
        while True:
            started = time.perf_counter()
            try:
                outcome = self._store(messages)
            except self._unavailable as exc:
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning(
                        "database refused a batch of %d (try %d): %s", len(messages), failures, _short(exc)
                    )
                # Reconnect on the next try: a restarted or failed-over server leaves stale connections.
                self.pipeline.engine.dispose()
                if self.stopping():
                    give_up_at = give_up_at or time.monotonic() + self.give_up_s
                    if time.monotonic() > give_up_at:
                        return Committed(None, db_errors=failures)
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, self.retry_max_s)
                continue
            if failures:
                log.warning("database accepts writes again after %d failed tries", failures)
            return Committed(outcome, time.perf_counter() - started, failures)

    def _store(self, messages: Sequence[RawMessage]) -> Outcome:
        try:
            return self.pipeline.store(messages)[0]
        except self._unavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - one message must not stop ingest for everyone
            if len(messages) == 1:
                return self._quarantine_failed(messages[0], exc)
            log.warning(
                "a batch of %d failed (%s); writing its messages one by one", len(messages), _short(exc)
            )
        total = Outcome()
        for message in messages:
            try:
                outcome = self.pipeline.store([message])[0]
            except self._unavailable:
                raise
            except Exception as exc:  # noqa: BLE001
                outcome = self._quarantine_failed(message, exc)
            total.stored += outcome.stored
            total.duplicates += outcome.duplicates
            total.quarantined += outcome.quarantined
            total.lags += outcome.lags
            total.rebirths += outcome.rebirths
            for reason, n in outcome.reasons.items():
                total.reasons[reason] = total.reasons.get(reason, 0) + n
        return total

    def _quarantine_failed(self, message: RawMessage, exc: Exception) -> Outcome:
        """Quarantine one message that failed on its own: the database refused it, or our code raised."""
        topic, payload, received_at = message
        if isinstance(exc, self._refused):
            rejection = Rejection("db_rejected", f"the database refused this message alone: {_short(exc)}")
        else:
            log.error("storing one message raised; quarantined as internal_error", exc_info=exc)
            rejection = Rejection("internal_error", f"{type(exc).__name__}: {_short(exc, 2000)}")
        row = quarantine_row(topic, payload, rejection, datetime.fromtimestamp(received_at, UTC))
        with self.pipeline.engine.begin() as conn:
            telemetry.insert_quarantine(conn, [row])
        outcome = Outcome(quarantined=1)
        outcome.add_reason(rejection.reason)
        return outcome


class BatchWriter:
    """Drains a bounded queue in batches; nothing is handed to `on_committed` before its commit."""

    def __init__(
        self,
        *,
        inbox: Inbox,
        on_committed: Callable[[list[Envelope]], None],
        pipeline: Pipeline | None = None,
        committer: Committer | None = None,
        batch_size: int = 500,
        batch_s: float = 0.1,
        retry_max_s: float = 10.0,
        give_up_s: float = 10.0,
    ) -> None:
        if committer is None:
            if pipeline is None:
                raise ValueError("a BatchWriter needs a pipeline or a committer")
            committer = Committer(pipeline=pipeline, retry_max_s=retry_max_s, give_up_s=give_up_s)
        self.committer = committer
        self.inbox = inbox
        self.on_committed = on_committed
        # Called with (group, edge node) for each rebirth a Sparkplug batch asks for, before its acks.
        self.on_rebirth: Callable[[str, str], None] | None = None
        self.batch_size = batch_size
        self.batch_s = batch_s
        self.stats = WriterStats()
        self.reasons: dict[str, int] = {}
        self.unflushed = 0
        self.died = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="servicecast-writer", daemon=True)

    def start(self) -> None:
        """Start the committer, then draining."""
        self.committer.start()
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Flush what is queued and stop; False if something stayed uncommitted (it is not acked)."""
        self._stopping.set()
        self.committer.begin_stop()
        self._thread.join(timeout)
        self.committer.close(timeout)
        return not self._thread.is_alive() and self.unflushed == 0

    @property
    def alive(self) -> bool:
        """Whether the writer runs (or has not been started yet) and has not died, nor its committer."""
        return not self.died.is_set() and self.committer.alive

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:
            # Nothing is acked from now on; the process must notice and exit (see Ingester.run).
            self.died.set()
            log.exception("the writer died; %d messages stay unacknowledged", self.inbox.qsize())

    def _loop(self) -> None:
        while True:
            batch = self._collect()
            if not batch:
                if self._stopping.is_set():
                    return
                continue
            committed = self.committer.commit([(e.topic, e.payload, e.received_at) for e in batch])
            self._count_errors(committed)
            if committed.outcome is None:
                self.unflushed = len(batch) + self.inbox.qsize()
                log.error("stopping with %d messages uncommitted; the broker redelivers them", self.unflushed)
                return
            metrics.BATCH_COMMIT_SECONDS.observe(committed.seconds)
            self._count(committed.outcome)
            for group, edge_node in committed.outcome.rebirths:
                self.stats.rebirths += 1
                if self.on_rebirth is not None:
                    self.on_rebirth(group, edge_node)
            self.on_committed(batch)

    def _collect(self) -> list[Envelope]:
        return self.inbox.get_batch(
            self.batch_size,
            wait_s=0.05 if self._stopping.is_set() else 0.2,
            linger_s=self.batch_s,
            idle_s=IDLE_FLUSH_S,
        )

    def _count_errors(self, committed: Committed) -> None:
        if committed.db_errors:
            self.stats.db_errors += committed.db_errors
            metrics.DB_ERRORS.inc(committed.db_errors)
        if committed.undeclared:
            metrics.UNDECLARED_CODES.inc(committed.undeclared)

    def _count(self, outcome: Outcome) -> None:
        stats = self.stats
        stats.batches += 1
        stats.stored += outcome.stored
        stats.duplicates += outcome.duplicates
        stats.quarantined += outcome.quarantined
        metrics.MESSAGES.labels("stored").inc(outcome.stored)
        metrics.MESSAGES.labels("duplicate").inc(outcome.duplicates)
        metrics.MESSAGES.labels("quarantined").inc(outcome.quarantined)
        for reason, n in outcome.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n
            metrics.QUARANTINED.labels(reason).inc(n)
            log.warning("quarantined %d message(s): %s", n, reason)
        metrics.observe_many(metrics.LAG_SECONDS, outcome.lags)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:limit]
