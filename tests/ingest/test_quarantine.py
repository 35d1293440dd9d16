"""Quarantine: held byte for byte with a reason, listed, and replayed once the cause is fixed."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from fleet import contract, erasure, registry
from ingest.pipeline import Pipeline
from ingest.quarantine import replay
from servicecast.cli import app
from tests.ingest.support import (
    START,
    count_rows,
    in_process_ingester,
    messages,
    publish_acked,
    quarantine_reasons,
    register_fleet,
    stored_keys,
    wait_until,
)


def raw(machine: str, seq: int) -> tuple[str, bytes, float]:
    """A valid message of an acme machine as it comes off the wire."""
    payload = contract.encode_payload(seq, START, {"temperature_c": 60.0 + seq})
    return contract.telemetry_topic("acme", machine), payload, time.time()


def test_unknown_machine_is_held_then_replayed_once_after_registration(engine):
    register_fleet(engine, "acme", ["m-000"])
    pipeline = Pipeline(engine=engine)
    batch = [raw("m-000", 1), raw("m-new", 1), raw("m-new", 2), ("fleet/acme/m-000/telemetry", b"{oops", 0.0)]
    outcome, _ = pipeline.store(batch)
    assert (outcome.stored, outcome.quarantined) == (1, 3)
    assert sorted(quarantine_reasons(engine)) == ["malformed_json", "unknown_machine", "unknown_machine"]

    # Redelivery of the same bad bytes (a crash before the ack) does not add quarantine rows.
    pipeline.store(batch)
    assert len(quarantine_reasons(engine)) == 3

    registry.add_machine(engine=engine, tenant="acme", code="m-new")
    report = replay(engine=engine, reason="unknown_machine")
    assert (report.examined, report.stored, report.duplicates) == (2, 2, 0)
    assert count_rows(engine) == 3

    again = replay(engine=engine)
    assert again.examined == 1 and again.stored == 0
    assert again.still_quarantined == {"malformed_json": 1}
    assert count_rows(engine) == 3


def test_unknown_customer_is_distinguished_from_unknown_machine(engine):
    register_fleet(engine, "acme", ["m-000"])
    payload = contract.encode_payload(1, START, {"t": 1.0})
    Pipeline(engine=engine).store([("fleet/initech/m-000/telemetry", payload, time.time())])
    assert quarantine_reasons(engine) == ["unknown_customer"]


def test_auto_register_stores_new_machines_on_first_sight(engine):
    outcome, _ = Pipeline(engine=engine, auto_register=True).store([raw("m-001", 1), raw("m-002", 1)])
    assert outcome.stored == 2
    machines = registry.list_machines(engine=engine, tenant="acme")
    assert [m.code for _, m in machines] == ["m-001", "m-002"]
    assert all(m.auto_registered for _, m in machines)
    assert registry.active_purposes(engine=engine, tenant="acme") == {"service"}


def test_auto_register_takes_no_id_with_a_line_break(engine):
    payload = contract.encode_payload(1, START, {"t": 1.0})
    batch = [
        ("fleet/acme\n/m-001/telemetry", payload, time.time()),
        ("fleet/acme/m-001\n/telemetry", payload, 0.0),
    ]
    outcome, _ = Pipeline(engine=engine, auto_register=True).store(batch)
    assert (outcome.stored, outcome.quarantined) == (0, 2)
    assert quarantine_reasons(engine) == ["bad_topic", "bad_topic"]
    assert registry.list_machines(engine=engine) == []


def test_cli_lists_and_replays(engine, database_url, monkeypatch):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    register_fleet(engine, "acme", ["m-000"])
    Pipeline(engine=engine).store(
        [
            raw("m-late", 5),
            (
                "fleet/acme/m-000/telemetry",
                b'{"seq": "x", "ts": "2026-11-23T08:00:00Z", "readings": {}}',
                0.0,
            ),
        ]
    )
    runner = CliRunner()
    listed = runner.invoke(app, ["quarantine", "list"])
    assert listed.exit_code == 0
    assert "unknown_machine\tfleet/acme/m-late/telemetry" in listed.output
    assert "wrong_type" in listed.output

    registry.add_machine(engine=engine, tenant="acme", code="m-late")
    replayed = runner.invoke(app, ["quarantine", "replay", "--reason", "unknown_machine"])
    assert replayed.exit_code == 0
    assert "stored 1" in replayed.output
    assert count_rows(engine) == 1
    assert "m-late" not in runner.invoke(app, ["quarantine", "list"]).output
    assert "replayed" in runner.invoke(app, ["quarantine", "list", "--all"]).output


@pytest.mark.mosquitto
def test_a_customer_erased_and_registered_again_while_the_ingester_runs(
    mosquitto, database_url, engine, tmp_path
):
    register_fleet(engine, "acme", ["m-000"])
    register_fleet(engine, "globex", ["g-000"])
    ingester = in_process_ingester(database_url, engine, mosquitto.url, "ingest-erased")
    try:
        first = messages("acme", ["m-000"], 3) + messages("globex", ["g-000"], 3)
        publish_acked(mosquitto.url, first)
        wait_until(lambda: count_rows(engine) == 6, 30, "both customers' first messages")
        erasure.erase(
            engine, tenant="acme", confirm="acme", by="test", archive_url=str(tmp_path), now=datetime.now(UTC)
        )
        # The machines still send: the ingester has their old ids in memory.
        gone = messages("acme", ["m-000"], 3, first_seq=4) + messages("globex", ["g-000"], 3, first_seq=4)
        publish_acked(mosquitto.url, gone)
        wait_until(lambda: ingester.stats.stored + ingester.stats.quarantined == 12, 30, "the second round")
        register_fleet(engine, "acme", ["m-000"])
        back = messages("acme", ["m-000"], 3, first_seq=7) + messages("globex", ["g-000"], 3, first_seq=7)
        publish_acked(mosquitto.url, back)
        wait_until(lambda: ingester.stats.stored + ingester.stats.quarantined == 18, 30, "the third round")
        assert ingester.writer.alive
    finally:
        ingester.stop()
    assert quarantine_reasons(engine) == ["unknown_customer"] * 3
    assert sorted(stored_keys(engine)) == [("g-000", s) for s in range(1, 10)] + [
        ("m-000", s) for s in (7, 8, 9)
    ]
    report = replay(engine=engine)
    assert (report.examined, report.stored) == (3, 3)
    assert replay(engine=engine).examined == 0
    assert sorted(stored_keys(engine))[-6:] == [("m-000", s) for s in range(4, 10)]


def test_cli_list_shows_a_hostile_message_escaped_one_row_per_line(engine, database_url, monkeypatch):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    hostile = b"\x1b]0;owned\x07\x1b[2J\rfake\tcolumn\nline\xe2\x80\xae"
    Pipeline(engine=engine).store([("fleet/acme/m-000/telemetry\x1b[8m", hostile, 0.0)])
    listed = CliRunner().invoke(app, ["quarantine", "list"])
    assert listed.exit_code == 0, listed.output
    [line] = listed.stdout.splitlines()
    assert not set(line) & {"\x1b", "\x07", "\r", "\u202e"}
    assert line.count("\t") == 5
    assert line.endswith("\\x1b]0;owned\\x07\\x1b[2J\\rfake\\tcolumn\\nline\\u202e")
    assert "\tfleet/acme/m-000/telemetry\\x1b[8m\t" in line


def test_cli_list_refuses_a_negative_limit(engine, database_url, monkeypatch):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    listed = CliRunner().invoke(app, ["quarantine", "list", "--limit", "-1"])
    assert listed.exit_code == 2 and "--limit" in listed.output, listed.output
