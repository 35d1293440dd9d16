"""The ingester: MQTT source, bounded queue and batch writer wired together."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from fleet.db import Keepalive
from fleet.settings import MqttEndpoint, Settings
from ingest import metrics
from ingest.client import MqttSource
from ingest.contract import Limits
from ingest.inbox import Inbox
from ingest.worker import Recipe, WriterProcess
from ingest.writer import BatchWriter

if TYPE_CHECKING:
    from ingest.sparkplug.mapping import Mapping

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FATAL = 3
EXIT_WRITER_DIED = 4
EXIT_NETWORK_DIED = 5


class Ingester:
    """One ingest process's worth of work; `start`, then `stop` (or `run` until SIGTERM)."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        endpoint: MqttEndpoint,
        client_id: str | None = None,
        sparkplug: tuple[Mapping, str, float] | None = None,
    ) -> None:
        self.settings = settings
        self.inbox = Inbox(max_messages=settings.ingest_queue_size, max_bytes=settings.ingest_queue_bytes)
        self.source = MqttSource(
            endpoint=endpoint,
            inbox=self.inbox,
            client_id=client_id or settings.ingest_client_id,
            subscription=settings.subscription(),
            protocol=settings.mqtt_protocol,
            keepalive_s=settings.mqtt_keepalive_s,
            session_expiry_s=settings.mqtt_session_expiry_s,
        )
        self.writer = BatchWriter(
            committer=self._committer(settings, engine, sparkplug),
            inbox=self.inbox,
            on_committed=self.source.ack,
            batch_size=settings.ingest_batch_size,
            batch_s=settings.ingest_batch_ms / 1000,
        )
        self._stop = threading.Event()
        metrics.QUEUE_DEPTH.set_function(self.inbox.qsize)

    @staticmethod
    def _committer(settings: Settings, engine: Engine, sparkplug: tuple[Mapping, str, float] | None):
        """Where batches are committed: a writer process (the default) or this process."""
        recipe = Recipe(
            database_url=engine.url.render_as_string(hide_password=False),
            auto_register=settings.ingest_auto_register,
            limits=Limits.from_settings(settings),
            keep_bytes=settings.ingest_quarantine_prefix_bytes,
            retry_max_s=settings.ingest_retry_max_s,
            sparkplug=sparkplug,
            keepalive=Keepalive.from_settings(settings),
        )
        return WriterProcess(recipe) if settings.ingest_writer_process else recipe.committer(engine)

    @property
    def stats(self):
        """The writer's running totals."""
        return self.writer.stats

    def start(self) -> None:
        """Start writing and receiving."""
        self.writer.start()
        self.source.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop receiving, commit and ack what was received, disconnect; True if nothing stayed pending."""
        self.source.stop_receiving()
        flushed = self.writer.stop(timeout)
        self.source.close()
        log.info(
            "ingester stopped: %d stored, %d duplicates, %d quarantined",
            self.stats.stored,
            self.stats.duplicates,
            self.stats.quarantined,
        )
        return flushed

    def readiness(self) -> tuple[bool, dict[str, str]]:
        """Whether this ingester stores what it receives: its writer runs and it is subscribed."""
        writer = "running" if self.writer.alive else "dead"
        broker = "subscribed" if self.source.subscribed.is_set() else "not subscribed"
        if self.source.takeover_suspected:
            broker = f"connections closed by the broker: client id {self.source.client_id!r} in use twice?"
        return writer == "running" and broker == "subscribed", {"writer": writer, "broker": broker}

    def run(self) -> int:
        """Run until SIGTERM/SIGINT, a fatal broker answer, or a dead writer or network thread; returns the
        exit code."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._stop.set())
        self.start()  # first: it forks the writer process, best before any other thread runs
        if self.settings.metrics_port is not None:
            metrics.serve(self.settings.metrics_port, self.settings.metrics_host, ready=self.readiness)
        while not self._stop.wait(0.2):
            if self.source.failed.is_set():
                self.stop()
                log.error("giving up: %s", self.source.fatal)
                return EXIT_FATAL
            if not self.writer.alive:
                # Alive but storing nothing is the worst state: exit so that a supervisor restarts us.
                self.source.stop_receiving()
                self.source.close()
                log.error("exiting: the writer died; unacknowledged messages will be redelivered")
                return EXIT_WRITER_DIED
            # A fatal answer ends the network thread too, after setting `failed`: the next pass reports it.
            if not self.source.network_alive and not self.source.failed.is_set():
                # Nothing arrives from now on: commit and ack what is queued, then leave to be restarted.
                log.error("exiting: the MQTT network thread ended; unacknowledged messages get redelivered")
                self.stop()
                return EXIT_NETWORK_DIED
        self.stop()
        return EXIT_OK
