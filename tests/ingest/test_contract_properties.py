"""Property: whatever bytes arrive, the parser answers with a Reading or a Rejection and never raises."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.contract import parse_message
from ingest.schemas import Reading, Rejection

TOPIC = "fleet/acme/pump-7/telemetry"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
EXAMPLES = 1000  # per property; docs/benchmarks.md records the total
RUNS = {"bytes": 0, "json": 0, "near_valid": 0}

huge_ints = st.integers(min_value=-(10**400), max_value=10**400)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), huge_ints, st.integers())
# Text with lone surrogates, NULs and anything else a JSON escape can produce.
texts = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=20)
odd_timestamps = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2026-11-23T08:00:00",
            "2026-11-23T08:00:00+23:59",
            "2026-W48-1T08:00Z",
            "20261123T080000Z",
            "2026-02-30T00:00:00Z",
            "",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    texts,
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=30,
)
near_valid = st.fixed_dictionaries(
    {
        "seq": st.one_of(huge_ints, st.integers(min_value=-1, max_value=2**64), json_values),
        "ts": st.one_of(odd_timestamps, json_values),
        "readings": st.one_of(
            st.dictionaries(texts, st.one_of(numbers, json_values), max_size=6), json_values
        ),
    },
    optional={"v": st.one_of(st.just(1), json_values), "fw": st.one_of(texts, json_values), "x": json_values},
)


def encode(value: object) -> bytes:
    """JSON text as a device could send it: escapes for surrogates, literals for NaN and Infinity."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def answer(payload: bytes) -> Reading | Rejection:
    result = parse_message(TOPIC, payload, now=NOW)
    assert type(result) in (Reading, Rejection)
    return result


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_get_an_answer(payload):
    RUNS["bytes"] += 1
    answer(payload)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_gets_an_answer(value):
    RUNS["json"] += 1
    answer(encode(value))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid, st.integers(min_value=0, max_value=60))
def test_hostile_shapes_of_valid_messages_get_an_answer(body, depth):
    RUNS["near_valid"] += 1
    body = dict(body)
    if depth:
        body["nested"] = json.loads("[" * depth + "]" * depth)
    result = answer(encode(body))
    if type(result) is Reading:
        # What is accepted can be stored: finite floats, UTF-8 text, a timestamp in range.
        assert all(v is None or abs(float(v)) < float("inf") for v in result.readings.values())
        json.dumps(result.extra, ensure_ascii=False).encode("utf-8")
        assert datetime(2000, 1, 1, tzinfo=UTC) <= result.ts <= NOW.replace(minute=5)


def test_zz_report_example_count():
    """Runs last in this module: prints how many examples the properties above tried."""
    print(f"\nhypothesis examples run: {RUNS} total {sum(RUNS.values())}")
    assert all(n > 0 for n in RUNS.values())
