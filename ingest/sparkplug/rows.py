"""Named metrics of one Sparkplug message → the contract's telemetry rows and event messages, keyed from the
message alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from fleet import contract
from ingest.schemas import Rejection
from ingest.sparkplug.decode import Metric, Structured
from ingest.sparkplug.mapping import Target

# The idempotency key of a row: (metric ms << 21) | (Sparkplug seq << 13) | index. It is made from the
# message alone, so a redelivery after a crash, a second host or a seq wrap (0-255) gives the same key;
# two different messages collide only if they share a millisecond and seq mod 256.
_TS_LIMIT = 1 << 42  # ms, the year 2109
_INDEX_LIMIT = 1 << 13
TEXT_KEPT = 100  # characters of a text value or metric name that a quarantine row shows


class Values(NamedTuple):
    """The telemetry of one metric time of a message: its topic in the contract, the row's `seq` (`key`),
    the time in ms, readings by sensor and the row's extra fields (`sparkplug`: where it came from)."""

    topic: str
    seq: int
    ms: int
    readings: dict
    extra: dict

    def body(self) -> dict:
        """The contract v1 body these values stand for (the JSON text of a quarantined one)."""
        return {"v": 1, "seq": self.seq, "ts": _iso(self.ms), "readings": self.readings, **self.extra}


def key(ms: int, seq: int, index: int = 0) -> int:
    """The per-machine `seq` the store keys a Sparkplug-born row by."""
    return (ms << 21) | (seq << 13) | index


def _number(value: object) -> object:
    if type(value) is bool:
        return 1.0 if value else 0.0
    if type(value) is float and value - value != 0.0:
        return None  # a Float or Double NaN or infinity is a missing value (the JSON contract refuses them)
    if isinstance(value, bytes):
        return "<bytes>"  # the contract refuses it by name: a map pointing a sensor at a Bytes metric
    if type(value) is Structured:
        return f"<{value.kind}>"  # as Bytes: a wrong type, not a missing value
    if type(value) is str and len(value) > TEXT_KEPT:
        return f"{value[:TEXT_KEPT]}… ({len(value)} characters)"  # refused as text all the same, smaller
    return value


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def translate(
    target: Target, topic_text: str, ts: int, seq: int, metrics: list[tuple[str, Metric]]
) -> list[Values | tuple[str, dict]] | Rejection:
    """Named metrics of one message → telemetry values (one per metric time) and event messages."""
    groups: dict[int, dict] = {}  # ms → readings: one row (one key) a time, of live and backfill values alike
    backfill: dict[int, set[str]] = {}  # ms → the sensors of its row that came as is_historical
    again: list[tuple[int, str, object, bool]] = []  # a second, other value of a sensor at one ms
    events: list[tuple[int, str, str | None]] = []
    for name, (_, _, ms, historical, value, _) in metrics:
        ms = ms if ms is not None else ts
        if ms >= _TS_LIMIT:
            why = f"metric {name[:TEXT_KEPT]!r} has timestamp {ms}, beyond 2109"
            return Rejection("sparkplug_bad_payload", why)
        sensor = target.sensors.get(name)
        if sensor is not None:
            group = groups.get(ms)
            if group is None:
                group = groups[ms] = {}
            finite = type(value) is float and value - value == 0.0  # the common case, without a call
            value = value if finite else _number(value)
            if sensor in group:
                if group[sensor] != value:
                    again.append((ms, sensor, value, historical))
            else:
                group[sensor] = value
                if historical:
                    backfill.setdefault(ms, set()).add(sensor)
            continue
        rule = target.events.get(name)
        if rule is not None and value not in (None, False, 0, 0.0, "") and type(value) is not Structured:
            events.append((ms, rule.code, rule.severity))
    if len(events) >= _INDEX_LIMIT:
        return Rejection("sparkplug_bad_payload", f"{len(events)} event metrics in one message")
    out: list[Values | tuple[str, dict]] = []
    telemetry_topic = contract.telemetry_topic(target.tenant, target.machine)
    for ms, readings in groups.items():
        past = backfill.get(ms, ())
        # True or False when its values are all of one kind; with both, the sensors that came as backfill.
        historical = len(past) == len(readings) if len(past) in (0, len(readings)) else sorted(past)
        origin = {"topic": topic_text, "seq": seq, "historical": historical}
        out.append(Values(telemetry_topic, key(ms, seq), ms, readings, {"sparkplug": origin}))
    for ms, sensor, value, historical in again:
        # Under its row's key with other content: the store quarantines it as seq_conflict, not lost.
        origin = {"topic": topic_text, "seq": seq, "historical": historical}
        out.append(Values(telemetry_topic, key(ms, seq), ms, {sensor: value}, {"sparkplug": origin}))
    if not events:
        return out
    events_topic = f"{contract.TOPIC_ROOT}/{target.tenant}/{target.machine}/{contract.EVENTS_LEAF}"
    for i, (ms, code, severity) in enumerate(events, start=1):
        body = {"v": 1, "seq": key(ms, seq, i), "ts": _iso(ms), "code": code}
        body["sparkplug"] = {"topic": topic_text, "seq": seq}
        if severity:
            body["severity"] = severity
        out.append((events_topic, body))
    return out
