"""A quarantine reason no row can have is refused naming the known ones; a known one without rows: 0 rows."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from fleet import telemetry
from fleet.contract import QUARANTINE_REASONS as REASONS
from ingest.pipeline import Pipeline
from ingest.schemas import Rejection
from servicecast.cli import app
from tests.ingest.support import quarantine_reasons, register_fleet


def _held(engine) -> None:  # noqa: ANN001
    """One bad message of a registered machine, held as malformed_json."""
    register_fleet(engine, "acme", ["m-000"])
    Pipeline(engine=engine).store([("fleet/acme/m-000/telemetry", b"{oops", 0.0)])
    assert quarantine_reasons(engine) == ["malformed_json"]


@pytest.mark.parametrize("command", ["list", "replay"])
def test_an_unknown_reason_is_refused_with_exit_2_naming_the_known_ones(
    engine, database_url, monkeypatch, command
):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    _held(engine)
    result = CliRunner().invoke(app, ["quarantine", command, "--reason", "malformed_jsn"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "'malformed_jsn'" in lines[0]
    assert all(reason in lines[0] for reason in REASONS)
    assert "examined" not in result.stdout
    assert telemetry.pending_quarantine(engine)[0].replayed_at is None


@pytest.mark.parametrize("command", ["list", "replay"])
def test_a_known_reason_without_rows_answers_0_rows(engine, database_url, monkeypatch, command):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    _held(engine)
    result = CliRunner().invoke(app, ["quarantine", command, "--reason", "too_large"])
    assert result.exit_code == 0, result.output
    assert ("0 rows" in result.stderr) if command == "list" else ("examined 0" in result.stdout)


def test_a_reason_a_held_row_has_is_accepted_though_no_code_makes_it_any_more(
    engine, database_url, monkeypatch
):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    row = {
        "topic": "fleet/acme/m-000/telemetry",
        "payload": b"{}",
        "original_size": None,
        "reason": "retired_code",
        "detail": "held by an older version",
        "digest": hashlib.sha256(b"retired").hexdigest(),
        "received_at": datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
    }
    with engine.begin() as conn:
        telemetry.insert_quarantine(conn, [row])
    result = CliRunner().invoke(app, ["quarantine", "list", "--reason", "retired_code"])
    assert result.exit_code == 0, result.output
    assert "held by an older version" in result.stdout


def test_a_rejection_takes_only_a_known_reason():
    assert Rejection("bad_value", "x").reason == "bad_value"
    with pytest.raises(ValueError, match="unknown quarantine reason 'bad_valu'"):
        Rejection("bad_valu", "x")
