"""Helpers for ingest tests: messages, fleet registration, an ingester process, waiting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from fleet import contract, registration, subprocesses
from fleet.settings import MqttEndpoint, Settings
from fleet.tables import Machine, Quarantine, Telemetry
from ingest.inbox import Inbox
from ingest.pipeline import Pipeline
from ingest.schemas import Envelope
from ingest.service import Ingester
from ingest.writer import BatchWriter
from simulators.publisher import Publisher

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
# How long a servicecast process may take to start (imports, connect, subscribe): at load 14 on two cores an
# ingester took over 30 s (2026-12-06), the CI's runs never did; a wait that ends early costs nothing.
START_S = 120
# How long a test waits for something to happen (a row stored, a message received) when how soon is not what
# it checks: 10-20 s were outlasted on a loaded machine, and a wait that ends early costs nothing.
LOADED_S = 60


def machine_codes(n: int) -> list[str]:
    """Machine ids m-000, m-001, …"""
    return [f"m-{i:03d}" for i in range(n)]


def register_fleet(engine: Engine, tenant: str, codes: list[str]) -> None:
    """Register a customer (granting `service`) and its pumps in one transaction."""
    machines = [{"tenant": tenant, "machine": code, "machine_type": "pump"} for code in codes]
    registration.register_machines(engine=engine, machines=machines, granted_by="test")


def messages(tenant: str, codes: list[str], per_machine: int, first_seq: int = 1) -> list[tuple[str, bytes]]:
    """Valid v1 messages, interleaved across machines as a fleet would send them."""
    out = []
    for step in range(per_machine):
        seq = first_seq + step
        ts = START + timedelta(seconds=seq)
        for i, code in enumerate(codes):
            readings = {
                "temperature_c": 60.0 + (seq % 7) * 0.5 + i * 0.01,
                "vibration_mm_s": 2.0 + (seq % 5) * 0.1,
            }
            out.append((contract.telemetry_topic(tenant, code), contract.encode_payload(seq, ts, readings)))
    return out


def count_rows(engine: Engine) -> int:
    """Telemetry rows."""
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Telemetry)) or 0


def stored_keys(engine: Engine) -> list[tuple[str, int]]:
    """(machine code, seq) of every telemetry row, duplicates included if there were any."""
    query = select(Machine.code, Telemetry.seq).join(Machine, Telemetry.machine_id == Machine.id)
    with engine.connect() as conn:
        return [(code, seq) for code, seq in conn.execute(query)]


def quarantine_reasons(engine: Engine) -> list[str]:
    """Reason of every quarantine row."""
    with engine.connect() as conn:
        return list(conn.scalars(select(Quarantine.reason).order_by(Quarantine.id)))


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll until the predicate holds; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def publish_acked(url: str, stream: list[tuple[str, bytes]], timeout: float = 60) -> None:
    """Publish at QoS 1 and return once the broker has acknowledged every message."""
    with Publisher(url) as publisher:
        publisher.publish_many(stream)
        assert publisher.wait(timeout), "the broker did not acknowledge every message"


def drain_with_writer(pipeline: Pipeline, batch: list[tuple[str, bytes]]) -> BatchWriter:
    """Queue the batch, let a writer store it through `pipeline` until every message is handed back for
    acking, stop the writer; returns it for its stats."""
    inbox = Inbox(max_messages=10_000, max_bytes=2**26)
    acked: list[Envelope] = []
    writer = BatchWriter(pipeline=pipeline, inbox=inbox, on_committed=acked.extend)
    for mid, (topic, payload) in enumerate(batch, start=1):
        inbox.put(Envelope(topic, payload, 1, mid, time.time()))
    writer.start()
    try:
        wait_until(lambda: len(acked) == len(batch), 30, "every message committed and handed back for acking")
    finally:
        assert writer.stop(10)
    return writer


def in_process_ingester(
    database_url: str, engine: Engine, mqtt_url: str, client_id: str, **overrides: object
) -> Ingester:
    """An ingester in this process, started and subscribed."""
    settings = Settings(database_url=database_url, mqtt_url=mqtt_url, **overrides)
    ingester = Ingester(
        settings=settings, engine=engine, endpoint=MqttEndpoint(mqtt_url), client_id=client_id
    )
    ingester.start()
    wait_until(ingester.source.subscribed.is_set, LOADED_S, "the ingester to subscribe")
    return ingester


class IngestProcess:
    """`servicecast ingest` as a real process, so that it can be killed with SIGKILL."""

    def __init__(
        self, workdir: Path, *, database_url: str, mqtt_url: str, client_id: str, **env: str
    ) -> None:
        self.workdir = workdir
        self.client_id = client_id
        self.env = {
            **os.environ,
            "SERVICECAST_DATABASE_URL": database_url,
            "SERVICECAST_MQTT_URL": mqtt_url,
            "SERVICECAST_LOG_LEVEL": "INFO",
            **env,
        }
        self.process: subprocess.Popen | None = None
        self.runs = 0
        self.command = [sys.executable, "-m", "servicecast", "ingest", "--client-id", client_id]

    @property
    def log_path(self) -> Path:
        """The log of the current run."""
        return self.workdir / f"ingest-{self.client_id}-{self.runs}.log"

    def log(self) -> str:
        """What the current run has logged so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def start(self, wait_subscribed: bool = True) -> IngestProcess:
        """Start the process; by default wait until it has subscribed."""
        self.runs += 1
        with open(self.log_path, "wb") as log:
            self.process = subprocesses.popen(
                self.command,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait_subscribed:
            wait_until(
                lambda: "subscribed to" in self.log() or self.process.poll() is not None, START_S, "subscribe"
            )
            assert self.process.poll() is None, f"ingester exited early:\n{self.log()}"
        return self

    def kill9(self) -> None:
        """SIGKILL: no flush, no ack, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def wait_exit(self, timeout: float) -> int:
        """The exit code once the process ends by itself."""
        return self.process.wait(timeout=timeout)

    def stop_quietly(self) -> None:
        """Make sure the process is gone (test teardown)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def crash_and_restart(
    ingester: IngestProcess,
    engine: Engine,
    batch: list[tuple[str, bytes]],
    *,
    mqtt_url: str,
    client_id: str,
    rows_before: int,
    crash: Callable[[], None],
) -> None:
    """Publish `batch` to the ingester, `crash` it once `rows_before` rows are stored, start it again and wait
    for every row; the restarted ingester must then stop cleanly."""
    try:
        ingester.start()
        with Publisher(mqtt_url, client_id=client_id) as publisher:
            publisher.publish_many(batch)
            wait_until(lambda: count_rows(engine) >= rows_before, 60, f"{rows_before} rows before the crash")
            crash()
            assert publisher.wait(60), "the broker did not acknowledge every publish"
        ingester.start()
        wait_until(lambda: count_rows(engine) >= len(batch), 120, "every row after the restart")
        time.sleep(1.0)  # anything redelivered late would show up as an extra row now
        assert ingester.terminate() == 0
    finally:
        ingester.stop_quietly()


def poison_everything(engine) -> None:
    """SQLite refuses seq 13 and any quarantine row: nowhere left to put that message."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER poison BEFORE INSERT ON telemetry WHEN NEW.seq = 13 "
                "BEGIN SELECT RAISE(ABORT, 'seq 13 refused'); END"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER no_quarantine BEFORE INSERT ON quarantine "
                "BEGIN SELECT RAISE(ABORT, 'quarantine refused'); END"
            )
        )
