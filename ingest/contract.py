"""Payload contract v1: one function turns a raw message into a reading or a rejection."""

from __future__ import annotations

import json
import math
from datetime import datetime

from fleet import contract
from ingest.schemas import Reading, Rejection

KNOWN_FIELDS = frozenset({"v", "seq", "ts", "readings", "fw"})
MAX_SEQ = 2**63 - 1
MAX_SENSOR_NAME = 64
MAX_FW = 64


def parse_topic(topic: str) -> tuple[str, str] | Rejection:
    """`fleet/{tenant}/{machine}/telemetry` → (tenant, machine)."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != contract.TOPIC_ROOT or parts[3] != contract.TOPIC_LEAF:
        return Rejection("bad_topic", f"topic {topic[:200]!r} is not fleet/{{tenant}}/{{machine}}/telemetry")
    tenant, machine = parts[1], parts[2]
    if not contract.TENANT_PATTERN.match(tenant):
        return Rejection("bad_topic", f"tenant id {tenant[:80]!r} has characters outside [A-Za-z0-9._-]")
    if not contract.MACHINE_PATTERN.match(machine):
        return Rejection("bad_topic", f"machine id {machine[:140]!r} has characters outside [A-Za-z0-9._-]")
    return tenant, machine


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_ts(raw: object) -> datetime | Rejection:
    """An ISO 8601 timestamp with an offset (or Z) → aware datetime."""
    if not isinstance(raw, str):
        return Rejection("wrong_type", f"ts must be an ISO 8601 string, got {type(raw).__name__}")
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        return Rejection("bad_timestamp", f"ts {raw[:60]!r} is not ISO 8601")
    if ts.tzinfo is None:
        return Rejection("bad_timestamp", f"ts {raw[:60]!r} has no UTC offset (end it with Z)")
    return ts


def _check_readings(raw: object) -> dict | Rejection:
    if not isinstance(raw, dict):
        return Rejection("wrong_type", f"readings must be an object, got {type(raw).__name__}")
    for name, value in raw.items():
        if len(name) > MAX_SENSOR_NAME or not name:
            return Rejection(
                "bad_value", f"sensor name {name[:80]!r} must have 1 to {MAX_SENSOR_NAME} characters"
            )
        if value is None:
            continue
        if not _is_number(value):
            return Rejection("wrong_type", f"readings.{name} must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            return Rejection("bad_value", f"readings.{name} is {value}, not a finite number")
    return raw


def parse_payload(body: object) -> tuple[int, datetime, dict, str | None, dict | None] | Rejection:
    """Check a decoded JSON body against contract v1."""
    if not isinstance(body, dict):
        return Rejection("wrong_type", f"payload must be a JSON object, got {type(body).__name__}")
    version = body.get("v", contract.PAYLOAD_VERSION)
    if version != contract.PAYLOAD_VERSION or isinstance(version, bool):
        return Rejection("unsupported_version", f"payload version {version!r} is not supported (expected 1)")
    for name in ("seq", "ts", "readings"):
        if name not in body:
            return Rejection("missing_field", f"{name} is required")
    seq = body["seq"]
    if not _is_int(seq):
        return Rejection("wrong_type", f"seq must be an integer, got {type(seq).__name__}")
    if not 0 <= seq <= MAX_SEQ:
        return Rejection("bad_value", f"seq {seq} is outside 0..2^63-1")
    ts = parse_ts(body["ts"])
    if isinstance(ts, Rejection):
        return ts
    readings = _check_readings(body["readings"])
    if isinstance(readings, Rejection):
        return readings
    fw = body.get("fw")
    if fw is not None and not isinstance(fw, str):
        return Rejection("wrong_type", f"fw must be a string, got {type(fw).__name__}")
    if fw is not None and len(fw) > MAX_FW:
        return Rejection("bad_value", f"fw has {len(fw)} characters, the limit is {MAX_FW}")
    extra = {k: v for k, v in body.items() if k not in KNOWN_FIELDS} or None
    return seq, ts, readings, fw, extra


def parse_message(topic: str, payload: bytes, *, max_bytes: int = 65_536) -> Reading | Rejection:
    """Topic and raw bytes → a Reading, or a Rejection with a precise reason."""
    where = parse_topic(topic)
    if isinstance(where, Rejection):
        return where
    if len(payload) > max_bytes:
        return Rejection("too_large", f"payload has {len(payload)} bytes, the limit is {max_bytes}")
    if b"\\u0000" in payload:
        # PostgreSQL text and JSONB cannot hold NUL; refusing here keeps one message from blocking a batch.
        return Rejection("bad_value", "payload contains a NUL character (\\u0000)")
    try:
        body = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return Rejection("malformed_json", f"payload is not UTF-8: {exc.reason} at byte {exc.start}")
    except (ValueError, RecursionError) as exc:
        return Rejection("malformed_json", f"payload is not JSON: {exc}")
    parsed = parse_payload(body)
    if isinstance(parsed, Rejection):
        return parsed
    seq, ts, readings, fw, extra = parsed
    return Reading(where[0], where[1], seq, ts, readings, fw, extra)
