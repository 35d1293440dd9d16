"""The telemetry contract shared by publishers and the ingester: topic layout and payload v1."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

PAYLOAD_VERSION = 1
TOPIC_ROOT = "fleet"
TOPIC_LEAF = "telemetry"
EVENTS_LEAF = "events"
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MACHINE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# Sensor names become JSON paths in the scorer's queries, so they stay identifiers.
SENSOR_PATTERN = re.compile(r"[A-Za-z0-9_]{1,64}\Z")
# An alarm or error code as a machine sends it on its events topic, and so as a types file may declare it.
CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")
CODE_RULE = "1 to 64 of [A-Za-z0-9._:-], first a letter or digit"
# Every reason a quarantine row is stored with (README's table, docs/sparkplug.md); ingest's Rejection takes
# no other.
QUARANTINE_REASONS = frozenset(
    {
        "bad_topic", "malformed_json", "too_large", "missing_field", "wrong_type", "bad_value",
        "bad_timestamp", "seq_conflict", "unsupported_version", "unknown_customer", "unknown_machine",
        "db_rejected", "internal_error", "bad_row", "sparkplug_bad_topic", "sparkplug_bad_payload",
        "sparkplug_unmapped", "sparkplug_unknown_node", "sparkplug_no_birth", "sparkplug_birth_without_bdseq",
        "sparkplug_unknown_alias",
    }
)  # fmt: skip


def telemetry_topic(tenant: str, machine: str) -> str:
    """The topic a machine publishes its telemetry on."""
    return f"{TOPIC_ROOT}/{tenant}/{machine}/{TOPIC_LEAF}"


def events_topic(tenant: str, machine: str) -> str:
    """The topic a machine publishes its alarm and error codes on."""
    return f"{TOPIC_ROOT}/{tenant}/{machine}/{EVENTS_LEAF}"


def format_ts(ts: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as the contract writes timestamps."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def encode_payload(seq: int, ts: datetime, readings: dict[str, float], **extra: object) -> bytes:
    """A v1 payload as bytes, ready to publish."""
    body = {"v": PAYLOAD_VERSION, "seq": seq, "ts": format_ts(ts), "readings": readings, **extra}
    return json.dumps(body, separators=(",", ":")).encode()


def encode_event(seq: int, ts: datetime, code: str, **optional: object) -> bytes:
    """An events v1 payload as bytes (`severity`, `text` and any other field as keywords)."""
    body = {"v": PAYLOAD_VERSION, "seq": seq, "ts": format_ts(ts), "code": code, **optional}
    return json.dumps(body, separators=(",", ":")).encode()
