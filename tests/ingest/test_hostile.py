"""Hostile payloads through a real Mosquitto: each gets an answer and good messages keep being stored."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fleet import contract, registry
from fleet.tables import Quarantine, Telemetry
from ingest.pipeline import Pipeline
from ingest.quarantine import replay
from servicecast.cli import app
from tests.ingest.support import (
    START,
    count_rows,
    in_process_ingester,
    machine_codes,
    messages,
    publish_acked,
    quarantine_reasons,
    register_fleet,
    stored_keys,
    wait_until,
)

TOPIC = contract.telemetry_topic("acme", "m-000")


def raw(**fields: str) -> bytes:
    """A payload of m-000 with some fields given as raw JSON text."""
    parts = {"seq": "1", "ts": '"2026-11-23T08:00:00Z"', "readings": '{"temperature_c": 1.0}'}
    parts.update(fields)
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in parts.items()) + "}").encode()


HOSTILE = [
    (raw(seq="101", readings='{"t": ' + "9" * 400 + "}"), "bad_value"),
    (raw(seq="102", ts='"0001-01-01T00:00:00+01:00"'), "bad_timestamp"),
    (raw(seq="103", ts='"9999-12-31T23:59:59-01:00"'), "bad_timestamp"),
    (raw(seq="104", fw='"\\ud800"'), "bad_value"),
    (raw(seq="105", readings="{" + ",".join(f'"s{i}": 1' for i in range(300)) + "}"), "bad_value"),
    (raw(seq="106", readings='{"a b": 1}'), "bad_value"),
    (raw(seq=str(2**63)), "bad_value"),
    (raw(seq="107", note='["\\udfff"]'), "bad_value"),
    (b"{" * 5000 + b"}" * 5000, "malformed_json"),
    (raw(seq="109", note="[" * 300 + "]" * 300), "bad_value"),
    (raw(seq="110", serial="123456789012345678901234567890"), "bad_value"),  # kept, it would be rounded
]


@pytest.mark.mosquitto
def test_hostile_payloads_are_quarantined_and_good_ones_after_them_are_stored(
    mosquitto, database_url, engine
):
    codes = machine_codes(5)
    register_fleet(engine, "acme", codes)
    before = messages("acme", codes, per_machine=20)
    after = messages("acme", codes, per_machine=20, first_seq=21)
    large = raw(seq="108", note='"' + "x" * 70_000 + '"')
    stream = before + [(TOPIC, payload) for payload, _ in HOSTILE] + [(TOPIC, large)] + after
    ingester = in_process_ingester(database_url, engine, mosquitto.url, "ingest-hostile")
    try:
        publish_acked(mosquitto.url, stream, 30)
        wait_until(lambda: count_rows(engine) == 200, 30, "the good messages before and after the bad ones")
        stats = ingester.stats
        wait_until(lambda: stats.quarantined == len(HOSTILE) + 1, 30, "every hostile message quarantined")
        assert ingester.writer.alive
    finally:
        ingester.stop()
    assert sorted(quarantine_reasons(engine)) == sorted([r for _, r in HOSTILE] + ["too_large"])
    assert set(stored_keys(engine)) == {(c, s) for c in codes for s in range(1, 41)}
    with engine.connect() as conn:
        kept = conn.execute(select(Quarantine).where(Quarantine.reason == "too_large")).one()
    assert (len(kept.payload), kept.original_size) == (1024, len(large))
    assert kept.payload == large[:1024]
    assert hashlib.sha256(large).hexdigest() in kept.detail


def test_redelivery_is_a_duplicate_and_a_reused_seq_with_other_content_is_quarantined(engine):
    register_fleet(engine, "acme", ["m-000"])
    pipeline = Pipeline(engine=engine)
    first = [
        (TOPIC, contract.encode_payload(seq, START, {"t": float(seq)}, fw="1.0"), time.time())
        for seq in (1, 2)
    ]
    assert pipeline.store(first)[0].stored == 2
    again, _ = pipeline.store(first)
    assert (again.stored, again.duplicates, again.quarantined) == (0, 2, 0)

    # The device rebooted and counts from 1 again: new readings under old keys must not vanish as duplicates.
    rebooted = [(TOPIC, contract.encode_payload(1, START.replace(hour=9), {"t": 99.0}), time.time())]
    outcome, results = pipeline.store(rebooted + first[1:])
    assert (outcome.stored, outcome.duplicates, outcome.quarantined) == (0, 1, 1)
    assert results[0].reason == "seq_conflict" and "seq 1" in results[0].detail
    assert quarantine_reasons(engine) == ["seq_conflict"]


def test_a_reused_seq_inside_one_batch_is_quarantined_not_dropped(engine):
    register_fleet(engine, "acme", ["m-000"])
    batch = [
        (TOPIC, contract.encode_payload(5, START, {"t": 1.0}), time.time()),
        (TOPIC, contract.encode_payload(5, START, {"t": 1.0}), time.time()),
        (TOPIC, contract.encode_payload(5, START, {"t": 2.0}), time.time()),
    ]
    outcome, _ = Pipeline(engine=engine).store(batch)
    assert (outcome.stored, outcome.duplicates, outcome.quarantined) == (1, 1, 1)
    assert quarantine_reasons(engine) == ["seq_conflict"]


def test_numbers_the_store_rewrites_still_count_as_the_same_content(engine):
    register_fleet(engine, "acme", ["m-000"])
    # Above 2^1023 PostgreSQL gives an integer that Python compares with the float exactly, and they differ.
    payload = raw(
        readings='{"a": 1e300, "b": 2.0, "c": 3, "d": 1.7976931348623157e308}',
        extra='{"x": [1.5e10, {"y": 2, "z": -1.5e308}]}',
    )
    message = [(TOPIC, payload, time.time())]
    Pipeline(engine=engine).store(message)
    outcome, _ = Pipeline(engine=engine).store(message)
    assert (outcome.duplicates, outcome.quarantined) == (1, 0)


def test_an_integer_past_64_bits_is_refused_where_it_would_be_kept_and_an_escaped_backslash_u0000_is_text(
    engine,
):
    register_fleet(engine, "acme", ["m-000"])
    wide = "123456789012345678901234567890"
    events = contract.events_topic("acme", "m-000")
    event = b'{"seq": 1, "ts": "2026-11-23T08:00:00Z", "code": "E1", "job": [' + wide.encode() + b"]}"
    batch = [
        (TOPIC, raw(seq="1", serial=wide), time.time()),
        (TOPIC, raw(seq="2", serial=f'"{wide}"', note=str(2**64 - 1)), time.time()),  # as text; the u64 max
        (TOPIC, raw(seq="3", readings='{"t": ' + wide + "}"), time.time()),  # a reading is a float anyway
        (TOPIC, raw(seq="4", fw=r'"C:\\u0000"'), time.time()),  # a backslash, then u0000: no NUL
        (events, event, time.time()),
        (events, event.replace(b'"seq": 1', b'"seq": 2').replace(b'"job"', b'"readings"'), time.time()),
    ]
    outcome, results = Pipeline(engine=engine).store(batch)
    reasons = [getattr(r, "reason", None) for r in results]
    assert reasons == ["bad_value", None, None, None, "bad_value", "bad_value"]  # an event has no readings
    assert f"serial is an integer past 64 bits ({wide[:20]}…)" in results[0].detail
    assert "job[0] is an integer past 64 bits" in results[4].detail
    assert (outcome.stored, outcome.quarantined) == (3, 3)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(Telemetry.seq, Telemetry.fw)).all())
    assert stored[4] == "C:\\u0000"


def test_too_large_rows_keep_a_prefix_and_replay_says_it_cannot_replay_them(engine):
    register_fleet(engine, "acme", ["m-000"])
    large = raw(note=json.dumps("y" * 100_000))
    unknown = (contract.telemetry_topic("acme", "m-new"), raw(), time.time())
    Pipeline(engine=engine, keep_bytes=100).store([(TOPIC, large, time.time()), unknown])
    with engine.connect() as conn:
        kept = conn.execute(select(Quarantine).where(Quarantine.reason == "too_large")).one()
    assert (kept.payload, kept.original_size) == (large[:100], len(large))
    report = replay(engine=engine)
    assert (report.examined, report.not_replayable) == (2, 1)
    assert report.still_quarantined == {"unknown_machine": 1}


def test_replay_reads_page_by_page(engine):
    register_fleet(engine, "acme", ["m-000"])
    batch = [
        (
            contract.telemetry_topic("acme", "m-late"),
            contract.encode_payload(s, START, {"t": 1.0}),
            time.time(),
        )
        for s in range(1, 8)
    ]
    Pipeline(engine=engine).store(batch)
    registry.add_machine(engine=engine, tenant="acme", code="m-late")
    report = replay(engine=engine, page_size=3)
    assert (report.examined, report.stored) == (7, 7)
    assert replay(engine=engine).examined == 0


def test_cli_replay_says_which_rows_it_cannot_replay(engine, database_url, monkeypatch):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    register_fleet(engine, "acme", ["m-000"])
    Pipeline(engine=engine).store([(TOPIC, raw(note=json.dumps("z" * 70_000)), time.time())])
    replayed = CliRunner().invoke(app, ["quarantine", "replay"])
    assert replayed.exit_code == 0, replayed.output
    assert "1 row with only a prefix of a too-large payload kept: cannot be replayed" in replayed.output
