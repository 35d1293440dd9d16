"""Quarantine: held byte for byte with a reason, listed, and replayed once the cause is fixed."""

from __future__ import annotations

import time

from typer.testing import CliRunner

from fleet import contract, registry
from ingest.pipeline import Pipeline
from ingest.quarantine import replay
from servicecast.cli import app
from tests.ingest.support import START, count_rows, quarantine_reasons, register_fleet


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
