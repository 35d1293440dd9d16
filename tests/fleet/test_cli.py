"""The `servicecast` command line as an operator uses it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from fleet import migrate
from servicecast.cli import app
from tests.ingest.support import REPO

runner = CliRunner()


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m servicecast ARGS` in a real process with these SERVICECAST_* variables; a rollup refresh's
    progress lines only when asked for (SERVICECAST_PROGRESS_EVERY_S): on a loaded machine a refresh runs
    past the default 5 s and would write them before the one line a test reads."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    return subprocess.run(
        [sys.executable, "-m", "servicecast", *args],
        cwd=REPO,
        env={**clean, "SERVICECAST_PROGRESS_EVERY_S": "3600", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_the_subcommands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("check-config", "db", "customers", "machines", "ingest", "quarantine", "demo"):
        assert command in result.output


def test_check_config_prints_settings_with_secrets_redacted(monkeypatch):
    monkeypatch.setenv("SERVICECAST_MQTT_URL", "mqtt://ingest:s3cret@broker.example:1883")
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", "postgresql+psycopg://app:hunter2@db.example/servicecast")
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 0
    assert "SERVICECAST_MQTT_URL=mqtt://ingest:***@broker.example:1883" in result.output
    assert "SERVICECAST_DATABASE_URL=postgresql+psycopg://app:***@db.example/servicecast" in result.output
    assert "s3cret" not in result.output and "hunter2" not in result.output
    assert "SERVICECAST_INGEST_BATCH_SIZE=500" in result.output


def test_check_config_prints_each_value_as_its_variable_takes_it():
    """A line of check-config set as the variable gives the same setting (a list was a Python tuple)."""
    env = {"SERVICECAST_WEBHOOK_ALLOW_NETWORKS": "10.20.0.0/16,chat.corp.example"}
    shown = run_cli("check-config", **env)
    assert shown.returncode == 0, shown.stderr
    assert "SERVICECAST_WEBHOOK_ALLOW_NETWORKS=10.20.0.0/16,chat.corp.example" in shown.stdout
    assert "SERVICECAST_INGEST_AUTO_REGISTER=false" in shown.stdout
    lines = dict(line.split("=", 1) for line in shown.stdout.splitlines())
    again = run_cli("check-config", **{k: v for k, v in lines.items() if v})
    assert again.returncode == 0, again.stderr
    assert again.stdout == shown.stdout


@pytest.mark.parametrize("password", ["hun#ter2", "hun?ter2", "hun/ter2", "hun%40ter2"])
def test_check_config_masks_a_database_password_holding_url_delimiters(password, monkeypatch):
    """SQLAlchemy reads these passwords whole; the mask split the URL where urlsplit does and printed them."""
    monkeypatch.setenv(
        "SERVICECAST_DATABASE_URL", f"postgresql+psycopg://app:{password}@db.example/servicecast"
    )
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 0, result.output
    assert "SERVICECAST_DATABASE_URL=postgresql+psycopg://app:***@db.example/servicecast" in result.output
    assert "hun" not in result.output and "ter2" not in result.output


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SERVICECAST_MQTT_URL", "http://broker:1883"),
        ("SERVICECAST_DATABASE_URL", "mysql://db/servicecast"),
        ("SERVICECAST_INGEST_BATCH_SIZE", "lots"),
        ("SERVICECAST_MQTT_PROTOCOL", "4"),
        ("SERVICECAST_METRICS_PORT", "70000"),
        # Days and seconds become timedeltas: inf or 1e9 days ended `retention run` in an OverflowError.
        ("SERVICECAST_RETAIN_ARCHIVE_DAYS", "inf"),
        ("SERVICECAST_HOT_DAYS", "1e9"),
        ("SERVICECAST_INGEST_FUTURE_MARGIN_S", "inf"),
        ("SERVICECAST_ALERT_ESCALATE_AFTER_MIN", "10000000000000"),
    ],
)
def test_a_bad_setting_exits_2_with_one_line_naming_the_variable(variable, value):
    result = run_cli("check-config", **{variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        # SQLAlchemy splits at the first @: the host would be ss@db.example, a traceback at the first query.
        ("SERVICECAST_DATABASE_URL", "postgresql+psycopg://app:p@ss@db.example/servicecast", "%40"),
        ("SERVICECAST_DATABASE_URL", "postgresql+psycopg2://app@db.example/servicecast", "psycopg2"),
        ("SERVICECAST_DATABASE_URL", "sqlitex:///var/servicecast.db", "sqlitex"),
        # In memory: each process its own empty store, gone at exit (and a TypeError from create_engine).
        ("SERVICECAST_DATABASE_URL", "sqlite:///", "database file"),
        ("SERVICECAST_DATABASE_URL", "sqlite:///:memory:", "database file"),
        # urlsplit stops the host at #: paho would connect to the host "ss" with the password "p".
        ("SERVICECAST_MQTT_URL", "mqtt://ingest:p@ss#1@broker.example:1883", "%23"),
    ],
)
def test_a_url_no_driver_could_use_as_meant_exits_2_with_one_line_naming_the_variable(variable, value, says):
    result = run_cli("check-config", **{variable: value})
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and says in lines[0]
    assert "ss@" not in lines[0] and "ss#" not in lines[0], "the message repeats the password"


def test_ingest_without_a_broker_url_exits_2(tmp_path):
    result = run_cli("ingest", SERVICECAST_DATABASE_URL=f"sqlite:///{tmp_path / 'servicecast.db'}")
    assert result.returncode == 2
    assert "SERVICECAST_MQTT_URL" in result.stderr


def test_customers_and_machines_are_registered_and_listed(monkeypatch, tmp_path):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert runner.invoke(app, ["customers", "add", "acme", "--name", "ACME Pumps", "--offers"]).exit_code == 0
    added = runner.invoke(
        app,
        [
            "machines",
            "add",
            "acme",
            "pump-7",
            "--type",
            "pump",
            "--installed",
            "2024-03-01",
            "--site",
            "Hall 2",
        ],
    )
    assert added.exit_code == 0, added.output
    assert "acme\tACME Pumps" in runner.invoke(app, ["customers", "list"]).output
    assert "acme/pump-7\tpump\tbasic" in runner.invoke(app, ["machines", "list"]).output

    again = runner.invoke(app, ["customers", "add", "acme"])
    assert again.exit_code == 1 and "exists already" in again.output
    orphan = runner.invoke(app, ["machines", "add", "nobody", "m1"])
    assert orphan.exit_code == 1 and "no customer 'nobody'" in orphan.output
    unknown = runner.invoke(app, ["machines", "list", "--tenant", "nobody"])  # not an empty list
    assert unknown.exit_code == 1 and "no customer 'nobody'" in unknown.output
    bad_date = runner.invoke(app, ["machines", "add", "acme", "m2", "--installed", "March"])
    assert bad_date.exit_code == 2
    bad_id = runner.invoke(app, ["machines", "add", "acme", "pump/8"])
    assert bad_id.exit_code == 1 and "must match" in bad_id.output


@pytest.mark.parametrize(
    "command",
    [
        ["machines", "list"],
        ["db", "upgrade"],
        ["db", "downgrade", "base"],
        ["simulate", "fleet", "--backfill"],
    ],
)
def test_a_database_migrated_by_a_newer_servicecast_is_one_line_naming_its_revision(
    command, database_url, engine, monkeypatch
):
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    result = runner.invoke(app, command)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "9999_future" in lines[0] and migrate.head_revision() in lines[0], lines
    assert lines[0].startswith("servicecast: cannot migrate the database SERVICECAST_DATABASE_URL="), lines
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "9999_future"
