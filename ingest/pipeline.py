"""Parse, resolve and write one batch of messages in a single transaction."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from fleet import registry, telemetry
from ingest import contract
from ingest.schemas import Outcome, Reading, Rejection

log = logging.getLogger(__name__)

RawMessage = tuple[str, bytes, float]


def digest(topic: str, payload: bytes) -> str:
    """A stable id for a raw message, so that a redelivered bad message is quarantined once."""
    return hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()


def quarantine_row(topic: str, payload: bytes, rejection: Rejection, received_at: datetime) -> dict:
    """The quarantine row of a rejected message, keyed by its digest."""
    return {
        "topic": topic,
        "payload": payload,
        "reason": rejection.reason,
        "detail": rejection.detail,
        "digest": digest(topic, payload),
        "received_at": received_at,
    }


class Pipeline:
    """The one code path from raw messages to telemetry and quarantine rows."""

    def __init__(self, *, engine: Engine, auto_register: bool = False, max_bytes: int = 65_536) -> None:
        self.engine = engine
        self.auto_register = auto_register
        self.max_bytes = max_bytes
        self._ids: dict[registry.MachineKey, tuple[int, int]] = {}

    def store(self, messages: Sequence[RawMessage]) -> tuple[Outcome, list[Reading | Rejection]]:
        """Write a batch; returns the counts and, per message, its reading or why it was quarantined."""
        results: list[Reading | Rejection] = [
            contract.parse_message(topic, payload, max_bytes=self.max_bytes) for topic, payload, _ in messages
        ]
        keys = {(r.tenant, r.machine) for r in results if isinstance(r, Reading)}
        self._resolve(keys)
        unknown = keys - self._ids.keys()
        if unknown:
            results = self._reject_unknown(results, unknown)
        rows, seen = [], set()
        quarantine_rows = []
        for (topic, payload, received_at), result in zip(messages, results, strict=True):
            at = datetime.fromtimestamp(received_at, UTC)
            if isinstance(result, Rejection):
                quarantine_rows.append(quarantine_row(topic, payload, result, at))
                continue
            customer_id, machine_id = self._ids[(result.tenant, result.machine)]
            key = (machine_id, result.seq)
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                {
                    "customer_id": customer_id,
                    "machine_id": machine_id,
                    "seq": result.seq,
                    "ts": result.ts,
                    "readings": result.readings,
                    "fw": result.fw,
                    "extra": result.extra,
                    "received_at": at,
                }
            )
        with self.engine.begin() as conn:
            stored = telemetry.insert_telemetry(conn, rows)
            telemetry.insert_quarantine(conn, quarantine_rows)
        committed = datetime.now(UTC)
        outcome = Outcome(stored=stored, quarantined=len(quarantine_rows))
        outcome.duplicates = len(messages) - len(quarantine_rows) - stored
        for rejection in (r for r in results if isinstance(r, Rejection)):
            outcome.add_reason(rejection.reason)
        outcome.lags = [(committed - row["ts"]).total_seconds() for row in rows]
        return outcome, results

    def _resolve(self, keys: set[registry.MachineKey]) -> None:
        missing = keys - self._ids.keys()
        if not missing:
            return
        with self.engine.connect() as conn:
            self._ids.update(registry.lookup_machines(conn, missing))
        missing -= self._ids.keys()
        if missing and self.auto_register:
            try:
                registry.auto_register(self.engine, missing)
            except IntegrityError:
                log.info("another process registered some of %d new machines first", len(missing))
            with self.engine.connect() as conn:
                self._ids.update(registry.lookup_machines(conn, missing))

    def _reject_unknown(
        self, results: list[Reading | Rejection], unknown: set[registry.MachineKey]
    ) -> list[Reading | Rejection]:
        with self.engine.connect() as conn:
            tenants = registry.known_tenants(conn, {tenant for tenant, _ in unknown})
        out: list[Reading | Rejection] = []
        for r in results:
            if not isinstance(r, Reading) or (r.tenant, r.machine) not in unknown:
                out.append(r)
            elif r.tenant in tenants:
                out.append(
                    Rejection("unknown_machine", f"machine {r.machine!r} of {r.tenant!r} is not registered")
                )
            else:
                out.append(Rejection("unknown_customer", f"customer {r.tenant!r} is not registered"))
        return out
