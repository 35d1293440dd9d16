"""Payload contract v1: every kind of bad input gets its own precise reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fleet import contract as fleet_contract
from ingest.contract import parse_message
from ingest.schemas import Reading, Rejection

TOPIC = "fleet/acme/pump-7/telemetry"


def body(**fields: object) -> bytes:
    """A valid payload with some fields replaced (None removes a field)."""
    payload = {"v": 1, "seq": 42, "ts": "2026-11-23T08:00:00.000Z", "readings": {"temperature_c": 71.3}}
    payload.update(fields)
    return json.dumps({k: v for k, v in payload.items() if v is not None}).encode()


def test_valid_payload_becomes_a_reading_with_unknown_fields_kept():
    result = parse_message(TOPIC, body(fw="1.2.0", site_note="north hall"))
    assert isinstance(result, Reading)
    assert (result.tenant, result.machine, result.seq) == ("acme", "pump-7", 42)
    assert result.ts == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert result.readings == {"temperature_c": 71.3}
    assert result.fw == "1.2.0"
    assert result.extra == {"site_note": "north hall"}


def test_encoder_output_round_trips():
    ts = datetime(2026, 11, 23, 8, 0, 1, 234000, tzinfo=UTC)
    result = parse_message(TOPIC, fleet_contract.encode_payload(7, ts, {"a": 1.5, "b": None}))
    assert isinstance(result, Reading)
    assert (result.seq, result.ts, result.readings) == (7, ts, {"a": 1.5, "b": None})


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "detail_part"),
    [
        (TOPIC, b'{"seq": 1, "ts": ', "malformed_json", "not JSON"),
        (TOPIC, b"\xff\xfe", "malformed_json", "not UTF-8"),
        (TOPIC, b"[1, 2]", "wrong_type", "JSON object"),
        (TOPIC, body(seq="42"), "wrong_type", "seq must be an integer"),
        (TOPIC, body(seq=True), "wrong_type", "seq must be an integer"),
        (TOPIC, body(seq=4.5), "wrong_type", "seq must be an integer"),
        (TOPIC, body(seq=-1), "bad_value", "seq -1"),
        (TOPIC, body(seq=None), "missing_field", "seq is required"),
        (TOPIC, body(ts=None), "missing_field", "ts is required"),
        (TOPIC, body(readings=None), "missing_field", "readings is required"),
        (TOPIC, body(ts=1732348800), "wrong_type", "ts must be an ISO 8601 string"),
        (TOPIC, body(ts="yesterday"), "bad_timestamp", "not ISO 8601"),
        (TOPIC, body(ts="2026-11-23T08:00:00"), "bad_timestamp", "no UTC offset"),
        (TOPIC, body(readings=[1, 2]), "wrong_type", "readings must be an object"),
        (
            TOPIC,
            body(readings={"temperature_c": "71.3"}),
            "wrong_type",
            "readings.temperature_c must be a number",
        ),
        (TOPIC, body(readings={"temperature_c": True}), "wrong_type", "must be a number"),
        (TOPIC, b'{"seq": 1, "ts": "2026-11-23T08:00:00Z", "readings": {"t": NaN}}', "bad_value", "finite"),
        (TOPIC, body(fw=12), "wrong_type", "fw must be a string"),
        (TOPIC, body(fw="x" * 65), "bad_value", "fw has 65 characters"),
        (TOPIC, body(v=2), "unsupported_version", "version 2"),
        (TOPIC, body(readings={"t\u0000": 1.0}), "bad_value", "NUL"),
        ("fleet/acme/telemetry", body(), "bad_topic", "is not fleet/"),
        ("fleet/acme/pump 7/telemetry", body(), "bad_topic", "machine id"),
        ("fleet/ac+me/pump-7/telemetry", body(), "bad_topic", "tenant id"),
        ("other/acme/pump-7/telemetry", body(), "bad_topic", "is not fleet/"),
    ],
)
def test_bad_input_is_rejected_with_a_precise_reason(topic, payload, reason, detail_part):
    result = parse_message(topic, payload)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert detail_part in result.detail


def test_oversized_payload_is_rejected_before_parsing():
    result = parse_message(TOPIC, body(readings={f"s{i}": float(i) for i in range(200)}), max_bytes=512)
    assert isinstance(result, Rejection) and result.reason == "too_large"


def test_deeply_nested_json_is_answered_not_raised():
    result = parse_message(TOPIC, b"[" * 100_000 + b"]" * 100_000, max_bytes=1_000_000)
    assert isinstance(result, Rejection) and result.reason == "malformed_json"
