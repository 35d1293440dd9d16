"""Parse, resolve and write one batch of messages in a single transaction."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from fleet import display, events_store, registration, registry, telemetry
from ingest import contract, metrics
from ingest.contract import DEFAULT_LIMITS, Limits
from ingest.schemas import Event, Outcome, Reading, Rejection

log = logging.getLogger(__name__)

RawMessage = tuple[str, bytes, float]


def json_text(value: object) -> str:
    """JSON text of what the contract accepted (orjson parsed it, so orjson can write it)."""
    return orjson.dumps(value).decode()


def digest(topic: str, payload: bytes) -> str:
    """A stable id for a raw message, so that a redelivered bad message is quarantined once."""
    return hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()


def _text(value: str) -> str:
    """Text any store can hold: no lone surrogates, no NUL."""
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def quarantine_row(
    topic: str, payload: bytes, rejection: Rejection, received_at: datetime, *, keep_bytes: int | None = None
) -> dict:
    """The quarantine row of a rejected message, keyed by its digest; at most `keep_bytes` of a large one."""
    detail, original_size = rejection.detail, None
    if keep_bytes is not None and len(payload) > keep_bytes:
        detail += f"; kept the first {keep_bytes} bytes (sha256 {hashlib.sha256(payload).hexdigest()})"
        original_size = len(payload)
    return {
        "topic": _text(topic),
        "payload": payload if original_size is None else payload[:keep_bytes],
        "original_size": original_size,
        "reason": rejection.reason,
        "detail": _text(detail),
        "digest": digest(topic, payload),
        "received_at": received_at,
    }


def _number(value: object) -> object:
    if type(value) is not int:
        return value
    try:
        return float(value)
    except OverflowError:  # beyond a double: not from a float, so compared as it is
        return value


def _normal(value: object) -> object:
    """JSON as the stores give it back: PostgreSQL may turn 1e300 into an integer, 2.0 into 2."""
    if type(value) is dict:
        return {k: _normal(v) for k, v in value.items()}
    if type(value) is list:
        return [_normal(v) for v in value]
    return _number(value)


def same_content(stored: dict, row: dict) -> bool:
    """Whether a stored telemetry row carries what `row` would have written (ts, readings, fw, extra)."""
    return (
        stored["ts"] == row["ts"]
        and stored["fw"] == row["fw"]
        and _normal(stored["readings"]) == _normal(row["readings"])
        and _normal(stored["extra"]) == _normal(row["extra"])
    )


def same_event(stored: dict, row: dict) -> bool:
    """Whether a stored event row carries what `row` would have written."""
    return (
        stored["ts"] == row["ts"]
        and stored["code"] == row["code"]
        and stored["severity"] == row["severity"]
        and stored["text"] == row["text"]
        and _normal(stored["extra"]) == _normal(row["extra"])
    )


def conflict(row: dict, stored: dict) -> Rejection:
    """The rejection of a message whose key is taken by a row with other content."""
    return Rejection(
        "seq_conflict",
        f"seq {row['seq']} of this machine is stored already with other content (stored ts "
        f"{display.to_the_second(stored['ts'])}, this ts {display.to_the_second(row['ts'])}); "
        "a restarted seq needs a new one",
    )


class Pipeline:
    """The one code path from raw messages to telemetry and quarantine rows."""

    def __init__(
        self,
        *,
        engine: Engine,
        auto_register: bool = False,
        limits: Limits = DEFAULT_LIMITS,
        keep_bytes: int = 1024,
    ) -> None:
        self.engine = engine
        self.auto_register = auto_register
        self.limits = limits
        self.keep_bytes = keep_bytes
        self._ids: dict[registration.MachineKey, tuple[int, int]] = {}

    def store(
        self,
        messages: Sequence[RawMessage],
        *,
        also: Callable[[Connection], None] | None = None,
        parsed: list[Reading | Event | Rejection] | None = None,
        payload_of: Callable[[int], bytes] | None = None,
    ) -> tuple[Outcome, list[Reading | Event | Rejection]]:
        """Write a batch; returns the counts and, per message, what it carried or why it was quarantined.

        `also` writes more in the same transaction (a Sparkplug host's node state commits with its data).
        `parsed`: what each message is, checked by the caller through the contract (`contract.parse_body`).
        `payload_of(i)`: the payload of message i, made only when it is quarantined (the messages carry none).
        """
        try:
            return self._store(messages, also, None if parsed is None else list(parsed), payload_of)
        except IntegrityError:
            if not self._ids:
                raise
            # A customer erased (and maybe registered again) since its ids were cached: look them up anew.
            self._ids.clear()
            return self._store(messages, also, parsed, payload_of)

    def _store(
        self,
        messages: Sequence[RawMessage],
        also: Callable[[Connection], None] | None,
        parsed: list[Reading | Event | Rejection] | None,
        payload_of: Callable[[int], bytes] | None,
    ) -> tuple[Outcome, list[Reading | Event | Rejection]]:
        now, limits, parse = datetime.now(UTC), self.limits, contract.parse_message
        results: list[Reading | Event | Rejection] = (
            parsed
            if parsed is not None
            else [parse(topic, payload, limits=limits, now=now) for topic, payload, _ in messages]
        )
        keys = {(r.tenant, r.machine) for r in results if type(r) is not Rejection}
        self._resolve(keys)
        unknown = keys - self._ids.keys()
        if unknown:
            results = self._reject_unknown(results, unknown)
        rows: list[dict] = []
        origin: list[int] = []  # index in `messages` of each row
        seen: dict[tuple[int, int], dict] = {}
        events = _Events()
        for i, result in enumerate(results):
            if type(result) is Event:
                events.add(i, result, self._ids[(result.tenant, result.machine)], messages[i][2], results)
                continue
            if type(result) is not Reading:
                continue
            customer_id, machine_id = self._ids[(result.tenant, result.machine)]
            row = {
                "customer_id": customer_id,
                "machine_id": machine_id,
                "seq": result.seq,
                "ts": result.ts,
                "readings": result.readings,
                "fw": result.fw,
                "extra": result.extra,
                "received_at": datetime.fromtimestamp(messages[i][2], UTC),
            }
            key = (machine_id, result.seq)
            first = seen.get(key)
            if first is None:
                seen[key] = row
                rows.append(row)
                origin.append(i)
            elif not same_content(first, row):
                results[i] = conflict(row, first)
        with self.engine.begin() as conn:
            stored = telemetry.insert_telemetry(conn, rows, dumps=json_text)
            if stored < len(rows):
                # Fewer new rows than sent: tell redeliveries (same content) from a reused seq.
                found = telemetry.stored_rows(
                    conn, [(r["customer_id"], r["machine_id"], r["seq"]) for r in rows]
                )
                for row, i in zip(rows, origin, strict=True):
                    old = found.get((row["machine_id"], row["seq"]))
                    # None: an archived run holds the seq on its step, so the trigger skipped it: a duplicate.
                    if old is not None and not same_content(old, row):
                        results[i] = conflict(row, old)
            stored += events.write(conn, results)
            quarantine_rows = [
                quarantine_row(
                    messages[i][0],
                    messages[i][1] if payload_of is None else payload_of(i),
                    result,
                    datetime.fromtimestamp(messages[i][2], UTC),
                    keep_bytes=self._keep(result),
                )
                for i, result in enumerate(results)
                if type(result) is Rejection
            ]
            telemetry.insert_quarantine(conn, quarantine_rows)
            if also is not None:
                also(conn)
        committed = datetime.now(UTC)
        outcome = Outcome(stored=stored, quarantined=len(quarantine_rows))
        outcome.duplicates = len(messages) - len(quarantine_rows) - stored
        for rejection in (r for r in results if type(r) is Rejection):
            outcome.add_reason(rejection.reason)
        outcome.lags = [(committed - row["ts"]).total_seconds() for row in rows]
        return outcome, results

    def _keep(self, rejection: Rejection) -> int | None:
        return self.keep_bytes if rejection.reason == "too_large" else None

    def _resolve(self, keys: set[registration.MachineKey]) -> None:
        missing = keys - self._ids.keys()
        if not missing:
            return
        with self.engine.connect() as conn:
            self._ids.update(registration.lookup_machines(conn, missing))
        missing -= self._ids.keys()
        if missing and self.auto_register:
            try:
                registry.auto_register(self.engine, missing)
            except IntegrityError:
                log.info("another process registered some of %d new machines first", len(missing))
            with self.engine.connect() as conn:
                self._ids.update(registration.lookup_machines(conn, missing))

    def _reject_unknown(
        self, results: list[Reading | Event | Rejection], unknown: set[registration.MachineKey]
    ) -> list[Reading | Event | Rejection]:
        with self.engine.connect() as conn:
            tenants = registry.known_tenants(conn, {tenant for tenant, _ in unknown})
        out: list[Reading | Event | Rejection] = []
        for r in results:
            if type(r) is Rejection or (r.tenant, r.machine) not in unknown:
                out.append(r)
            elif r.tenant in tenants:
                out.append(
                    Rejection("unknown_machine", f"machine {r.machine!r} of {r.tenant!r} is not registered")
                )
            else:
                out.append(Rejection("unknown_customer", f"customer {r.tenant!r} is not registered"))
        return out


class _Events:
    """The event rows of one batch, first of each (machine, seq) only, and where each came from."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.origin: list[int] = []
        self.seen: dict[tuple[int, int], dict] = {}
        self.keys: dict[int, registration.MachineKey] = {}  # (tenant, machine) by machine id, for the log

    def add(self, i: int, event: Event, ids: tuple[int, int], received: float, results: list) -> None:
        """Take the event of message `i`, or mark it a conflict with an earlier one of the batch."""
        row = {
            "customer_id": ids[0],
            "machine_id": ids[1],
            "seq": event.seq,
            "ts": event.ts,
            "code": event.code,
            "severity": event.severity,
            "text": event.text,
            "extra": event.extra,
            "received_at": datetime.fromtimestamp(received, UTC),
        }
        self.keys[ids[1]] = (event.tenant, event.machine)
        first = self.seen.get((ids[1], event.seq))
        if first is None:
            self.seen[(ids[1], event.seq)] = row
            self.rows.append(row)
            self.origin.append(i)
        elif not same_event(first, row):
            results[i] = conflict(row, first)

    def write(self, conn, results: list) -> int:
        """Store the new rows; a key taken by other content turns its message into a seq_conflict."""
        stored = events_store.insert_events(conn, self.rows, dumps=json_text)
        if stored < len(self.rows):
            found = events_store.stored_events(
                conn, [(r["customer_id"], r["machine_id"], r["seq"]) for r in self.rows]
            )
            for row, i in zip(self.rows, self.origin, strict=True):
                old = found[(row["machine_id"], row["seq"])]
                if not same_event(old, row):
                    results[i] = conflict(row, old)
        if self.rows:
            self._note_undeclared(conn)
        return stored

    def _note_undeclared(self, conn) -> None:
        codes: dict[int, set[str]] = {}
        for row in self.rows:
            codes.setdefault(row["machine_id"], set()).add(row["code"])
        for machine_id, unknown in events_store.undeclared_codes(conn, codes).items():
            metrics.UNDECLARED_CODES.inc(
                sum(r["machine_id"] == machine_id and r["code"] in unknown for r in self.rows)
            )
            log.warning(
                "machine %s/%s sent codes its type does not declare (stored): %s",
                *self.keys[machine_id],
                sorted(unknown),
            )
