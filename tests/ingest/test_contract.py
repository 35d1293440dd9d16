"""Payload contract v1: every kind of bad input gets its own precise reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fleet import contract as fleet_contract
from fleet.settings import Settings
from ingest.contract import Limits, parse_body, parse_message, reading_of
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
        ("fleet/acme/pump-7\n/telemetry", body(), "bad_topic", "machine id"),
        ("fleet/acme/" + "m" * 129 + "/telemetry", body(), "bad_topic", "is not 1 to 128 of"),
        ("fleet/-acme/pump-7/telemetry", body(), "bad_topic", "beginning with a letter or digit"),
        ("fleet/acme\n/pump-7/telemetry", body(), "bad_topic", "tenant id"),
    ],
)
def test_bad_input_is_rejected_with_a_precise_reason(topic, payload, reason, detail_part):
    result = parse_message(topic, payload)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert detail_part in result.detail


def test_oversized_payload_is_rejected_before_parsing():
    result = parse_message(
        TOPIC, body(readings={f"s{i}": float(i) for i in range(200)}), limits=Limits(max_bytes=512)
    )
    assert isinstance(result, Rejection) and result.reason == "too_large"


def test_deeply_nested_json_is_answered_not_raised():
    result = parse_message(TOPIC, b"[" * 100_000 + b"]" * 100_000, limits=Limits(max_bytes=1_000_000))
    assert isinstance(result, Rejection) and result.reason == "malformed_json"


def raw_body(**fields: str) -> bytes:
    """A valid payload with some fields replaced by raw JSON text (to send what json.dumps would not)."""
    parts = {"v": "1", "seq": "42", "ts": '"2026-11-23T08:00:00.000Z"', "readings": '{"temperature_c": 71.3}'}
    parts.update(fields)
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in parts.items()) + "}").encode()


NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "reason", "detail_part"),
    [
        (raw_body(readings='{"t": ' + "9" * 400 + "}"), "bad_value", "outside the float range"),
        (raw_body(readings='{"t": -' + "9" * 400 + "}"), "bad_value", "outside the float range"),
        (raw_body(readings='{"t": 1e400}'), "bad_value", "finite"),
        (raw_body(ts='"0001-01-01T00:00:00+01:00"'), "bad_timestamp", "before"),
        (raw_body(ts='"9999-12-31T23:59:59-01:00"'), "bad_timestamp", "in the future"),
        (raw_body(ts='"1999-12-31T23:59:59Z"'), "bad_timestamp", "before"),
        (raw_body(ts='"2026-11-23T09:05:01Z"'), "bad_timestamp", "in the future"),
        (raw_body(fw='"\\ud800"'), "bad_value", "UTF-8"),
        (raw_body(readings='{"t\\udfff": 1.0}'), "bad_value", "UTF-8"),
        (raw_body(note='{"deep": ["\\ud83d"]}'), "bad_value", "UTF-8"),
        (raw_body(readings="{" + ", ".join(f'"s{i}": 1' for i in range(257)) + "}"), "bad_value", "257"),
        (raw_body(readings='{"temp c": 1.0}'), "bad_value", "sensor name"),
        (raw_body(readings='{"t.x": 1.0}'), "bad_value", "sensor name"),
        (raw_body(readings='{"t\'); DROP": 1.0}'), "bad_value", "sensor name"),
        (raw_body(seq=str(2**63)), "bad_value", "seq"),
        (raw_body(seq=str(10**400)), "bad_value", "seq"),
        (raw_body(note="[" * 300 + "]" * 300), "bad_value", "nested 301 levels deep"),
        (raw_body(note='{"a": ' * 254 + "1" + "}" * 254), "bad_value", "nested 255 levels deep"),
    ],
)
def test_what_the_store_cannot_hold_or_cannot_be_true_is_rejected(payload, reason, detail_part):
    result = parse_message(TOPIC, payload, now=NOW)
    assert isinstance(result, Rejection), result
    assert (result.reason, detail_part in result.detail) == (reason, True), result


@pytest.mark.parametrize(
    "payload",
    [
        raw_body(ts='"2026-11-23T09:04:59Z"'),  # inside the default margin of 5 minutes
        raw_body(ts='"2000-01-01T00:00:00Z"'),  # old data stays welcome
        raw_body(fw='"\\ud83d\\ude00 1.2"'),  # a surrogate pair is one valid character
        raw_body(readings='{"t": ' + "9" * 300 + "}"),  # a huge integer inside the float range
        raw_body(readings="{" + ", ".join(f'"s{i}": 1' for i in range(256)) + "}"),
        raw_body(note="[" * 253 + "]" * 253),  # as deep as the store's JSON writer goes
        raw_body(note='"' + "[" * 300 + '"'),  # brackets inside a string nest nothing
    ],
)
def test_edge_values_the_store_can_hold_are_accepted(payload):
    assert isinstance(parse_message(TOPIC, payload, now=NOW), Reading)


def test_limits_come_from_settings():
    limits = Limits.from_settings(
        Settings(ingest_max_readings=2, ingest_future_margin_s=0, ingest_ts_floor="2026-11-23T08:30:00Z")
    )
    assert parse_message(TOPIC, raw_body(readings='{"a": 1, "b": 2, "c": 3}'), limits=limits, now=NOW).reason
    late = parse_message(TOPIC, raw_body(ts='"2026-11-23T09:00:01Z"'), limits=limits, now=NOW)
    assert late.reason == "bad_timestamp"
    early = parse_message(TOPIC, raw_body(), limits=limits, now=NOW)
    assert early.reason == "bad_timestamp"


@pytest.mark.parametrize("margin", ["1e12", "1e16"])  # inf: refused by the settings (404ef92)
def test_a_future_margin_past_the_calendar_means_no_limit(margin):
    limits = Limits.from_settings(Settings(ingest_future_margin_s=margin))
    far = raw_body(ts='"9999-12-31T23:59:59Z"')
    assert isinstance(parse_message(TOPIC, far, limits=limits), Reading)
    assert isinstance(parse_message(TOPIC, far, limits=limits, now=NOW), Reading)


def test_timestamps_are_normalised_to_utc():
    result = parse_message(TOPIC, raw_body(ts='"2026-11-23T09:00:00+01:00"'), now=NOW)
    assert result.ts == datetime(2026, 11, 23, 8, 0, tzinfo=UTC) and result.ts.tzinfo is UTC


@pytest.mark.parametrize(
    "fields",
    [{}, {"readings": {"t": True}}, {"readings": {"t c": 1}}, {"ts": "2026-11-23T09:05:01Z"}, {"seq": -1}],
)
def test_a_decoded_body_gets_the_same_answer_as_its_json(fields):
    payload = body(**fields)
    assert parse_body(TOPIC, json.loads(payload), now=NOW) == parse_message(TOPIC, payload, now=NOW)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"readings": {"t": True}},
        {"readings": {"t c": 1}},
        {"readings": {"t": float("inf")}},
        {"ts": "2026-11-23T09:05:01Z"},
        {"ts": "1999-12-31T23:59:59Z"},
        {"seq": -1},
    ],
)
def test_values_from_a_bridge_get_the_same_answer_as_the_body_they_stand_for(fields):
    """`reading_of` takes the time as a datetime (no ISO text to parse), then checks as `parse_body` does."""
    decoded = {"v": 1, "seq": 42, "ts": "2026-11-23T08:00:00.000Z", "readings": {"temperature_c": 71.3}}
    decoded |= {"sparkplug": {"seq": 3}, **fields}
    ts = datetime.fromisoformat(decoded["ts"])
    latest = NOW + Limits().future_margin
    extra = {"sparkplug": {"seq": 3}}
    got = reading_of(TOPIC, decoded["seq"], ts, decoded["readings"], extra=extra, latest=latest)
    want = parse_body(TOPIC, decoded, now=NOW)
    assert type(got) is type(want)
    assert got == want if type(want) is Reading else got.reason == want.reason


def test_values_for_an_events_topic_are_refused():
    events = TOPIC.replace("/telemetry", "/events")
    got = reading_of(events, 1, datetime(2026, 11, 23, 8, tzinfo=UTC), {"temperature_c": 1.0})
    assert type(got) is Rejection and got.reason == "bad_topic"
