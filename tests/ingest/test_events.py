"""Machine events: the second message kind, through a real Mosquitto, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from fleet import contract, events_store, machine_types, registration, registry
from fleet.tables import Machine, MachineEvent
from ingest.contract import parse_message
from ingest.pipeline import Pipeline
from ingest.quarantine import replay
from ingest.schemas import Event, Rejection
from simulators.publisher import Publisher
from tests.ingest.support import (
    REPO,
    START,
    count_rows,
    in_process_ingester,
    messages,
    quarantine_reasons,
    register_fleet,
    wait_until,
)

TYPES_FILE = REPO / "simulators" / "fleet_types.yaml"


def event(machine: str, seq: int, code: str = "P101", **optional: object) -> tuple[str, bytes]:
    """An acme machine's event as it goes on the wire."""
    ts = START + timedelta(minutes=seq)
    return contract.events_topic("acme", machine), contract.encode_event(seq, ts, code, **optional)


def stored_events(engine) -> list[tuple[str, int, str, str | None, str | None]]:
    """(machine, seq, code, severity, text) of every stored event."""
    query = (
        select(Machine.code, MachineEvent.seq, MachineEvent.code, MachineEvent.severity, MachineEvent.text)
        .join(Machine, MachineEvent.machine_id == Machine.id)
        .order_by(Machine.code, MachineEvent.seq)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


@pytest.mark.parametrize(
    ("payload", "reason", "words"),
    [
        (b'{"seq": 1, "ts": "2026-11-23T08:00:00Z"}', "missing_field", "code is required"),
        (b'{"seq": 1, "ts": "2026-11-23T08:00:00Z", "code": 101}', "wrong_type", "code must be a string"),
        (b'{"seq": 1, "ts": "2026-11-23T08:00:00Z", "code": "E 1"}', "bad_value", "code 'E 1'"),
        (b'{"seq": -1, "ts": "2026-11-23T08:00:00Z", "code": "E1"}', "bad_value", "outside 0..2^63-1"),
        (b'{"seq": 1, "ts": "2099-01-01T00:00:00Z", "code": "E1"}', "bad_timestamp", "in the future"),
        (
            b'{"seq": 1, "ts": "2026-11-23T08:00:00Z", "code": "E1", "severity": "loud"}',
            "bad_value",
            "severity",
        ),
        (b'{"seq": 1, "ts": "2026-11-23T08:00:00Z", "code": "E1", "text": 3}', "wrong_type", "text must be"),
        (b'{"seq": 1, "ts": "2026-11-23T08:00:00Z", "code": "E1", "text": "\\ud800"}', "bad_value", "UTF-8"),
        (b'{"seq": 1, "ts": "2026-11-23T08:00:00Z", "code": "E1", "text": "a\\u0000"}', "bad_value", "NUL"),
        (b'{"v": 2, "seq": 1, "ts": "2026-11-23T08:00:00Z", "code": "E1"}', "unsupported_version", "2"),
        (
            b'{"seq": 1, "ts": "2026-11-23T08:00:00Z", "code": "E1", "x": ' + b"[" * 300 + b"]" * 300 + b"}",
            "bad_value",
            "nested",
        ),
    ],
)
def test_bad_event_payloads_are_refused_with_a_reason(payload, reason, words):
    result = parse_message("fleet/acme/m-000/events", payload)
    assert type(result) is Rejection
    assert result.reason == reason and words in result.detail


def test_an_event_keeps_severity_text_and_unknown_fields():
    topic, payload = event("m-000", 7, "E101", severity="critical", text="dry run", site_note="x")
    result = parse_message(topic, payload)
    assert result == Event(
        "acme", "m-000", 7, START + timedelta(minutes=7), "E101", "critical", "dry run", {"site_note": "x"}
    )
    assert parse_message("fleet/acme/m-000/status", payload).reason == "bad_topic"


def test_a_reused_event_seq_with_other_content_is_a_seq_conflict(engine):
    register_fleet(engine, "acme", ["m-000"])
    pipeline = Pipeline(engine=engine)
    first = event("m-000", 1, "P101")
    outcome, _ = pipeline.store([(*first, time.time()), (*event("m-000", 1, "P102"), time.time())])
    assert (outcome.stored, outcome.quarantined) == (1, 1)
    outcome, _ = pipeline.store([(*first, time.time()), (*event("m-000", 1, "P201"), time.time())])
    assert (outcome.stored, outcome.duplicates, outcome.quarantined) == (0, 1, 1)
    assert quarantine_reasons(engine) == ["seq_conflict", "seq_conflict"]
    assert [e[2] for e in stored_events(engine)] == ["P101"]


def test_a_code_its_type_does_not_declare_is_stored_and_logged(engine, caplog):
    machine_types.apply_file(engine=engine, path=TYPES_FILE)
    machines = [{"tenant": "acme", "machine": "m-000", "machine_type": "centrifugal_pump"}]
    registration.register_machines(engine=engine, machines=machines, granted_by="test")
    before = REGISTRY.get_sample_value("servicecast_ingest_undeclared_codes_total") or 0.0
    with caplog.at_level(logging.WARNING, logger="ingest.pipeline"):
        outcome, _ = Pipeline(engine=engine).store(
            [(*event("m-000", 1, "P101"), time.time()), (*event("m-000", 2, "X999"), time.time())]
        )
    assert outcome.stored == 2
    assert [e[2] for e in stored_events(engine)] == ["P101", "X999"]
    # named as the contract addresses the machine, not by its row id
    assert "machine acme/m-000 sent codes its type does not declare (stored): ['X999']" in caplog.text
    assert REGISTRY.get_sample_value("servicecast_ingest_undeclared_codes_total") == before + 1


@pytest.mark.mosquitto
def test_events_through_mosquitto_are_stored_once_and_bad_ones_quarantined(mosquitto, database_url, engine):
    register_fleet(engine, "acme", ["m-000", "m-001"])
    good = [
        event(m, seq, f"E{100 + seq % 3}", severity="warning")
        for seq in range(1, 51)
        for m in ("m-000", "m-001")
    ]
    bad = [
        (contract.events_topic("acme", "m-000"), b'{"seq": 900, "ts": "2026-11-23T08:00:00Z"}'),
        (
            contract.events_topic("acme", "m-001"),
            b'{"seq": 901, "ts": "2026-11-23T08:00:00Z", "code": "E 1"}',
        ),
        (contract.events_topic("acme", "m-404"), contract.encode_event(1, START, "E100")),
        (contract.events_topic("acme", "m-000"), b"{not json"),
    ]
    readings = messages("acme", ["m-000"], per_machine=20)
    # Bad events between good ones; the good ones, the readings, then all of it again (a re-send).
    stream = good[:30] + bad[:2] + good[30:] + bad[2:] + readings
    ingester = in_process_ingester(database_url, engine, mosquitto.url, "ingest-events")
    try:
        with Publisher(mosquitto.url) as publisher:
            publisher.publish_many(stream)
            publisher.publish_many(stream)
            assert publisher.wait(60)
        stats = ingester.stats
        wait_until(
            lambda: stats.stored + stats.duplicates + stats.quarantined >= 2 * len(stream),
            60,
            "every delivery handled",
        )
    finally:
        ingester.stop()
    rows = stored_events(engine)
    assert len(rows) == 100
    assert {(m, seq) for m, seq, *_ in rows} == {(m, seq) for seq in range(1, 51) for m in ("m-000", "m-001")}
    assert all(severity == "warning" for *_, severity, _ in rows)
    assert count_rows(engine) == 20
    assert sorted(quarantine_reasons(engine)) == [
        "bad_value",
        "malformed_json",
        "missing_field",
        "unknown_machine",
    ]
    assert stats.stored == 120


def test_counts_per_code_and_last_seen_read_back(engine):
    register_fleet(engine, "acme", ["m-000"])
    Pipeline(engine=engine).store(
        [(*event("m-000", seq, "E1" if seq % 2 else "E2"), time.time()) for seq in range(1, 11)]
    )
    with engine.connect() as conn:
        machine_id = conn.scalar(select(Machine.id))
        counts = events_store.code_counts(
            conn,
            machine_ids=[machine_id],
            start=START + timedelta(minutes=3),
            end=START + timedelta(minutes=9),
        )
        last = events_store.last_seen(conn, machine_ids=[machine_id], before=START + timedelta(minutes=9))
    assert counts == {(machine_id, "E1"): 3, (machine_id, "E2"): 3}
    assert last == {
        (machine_id, "E1"): START + timedelta(minutes=7),
        (machine_id, "E2"): START + timedelta(minutes=8),
    }


def test_a_quarantined_event_is_replayed_once_its_machine_is_registered(engine):
    register_fleet(engine, "acme", ["m-000"])
    Pipeline(engine=engine).store([(*event("m-late", 1, "E7"), time.time())])
    assert quarantine_reasons(engine) == ["unknown_machine"]
    registry.add_machine(engine=engine, tenant="acme", code="m-late")
    report = replay(engine=engine, reason="unknown_machine")
    assert (report.examined, report.stored) == (1, 1)
    assert [e[:3] for e in stored_events(engine)] == [("m-late", 1, "E7")]
    assert replay(engine=engine).examined == 0
