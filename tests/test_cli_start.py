"""`servicecast --help` and light commands start without importing what only other commands need."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine

from fleet import credentials
from servicecast import cli, lazy_commands
from tests.ingest.support import register_fleet

REPO = Path(__file__).resolve().parents[1]
# Libraries a subcommand needs when it runs, never to list the commands.
HEAVY = ("pandas", "numpy", "sklearn", "statsmodels", "pyarrow", "fastapi", "asyncua", "paho", "alembic")

IMPORTED_BY = """
import json, sys
from servicecast.cli import app
try:
    app(sys.argv[1:], prog_name="servicecast")
except SystemExit:
    pass
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {heavy})))
"""


def _imported(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, set]:
    """`servicecast COMMAND` run in a process of its own, and the HEAVY libraries it imported."""
    script = IMPORTED_BY.format(heavy=set(HEAVY))
    done = subprocess.run(
        [sys.executable, "-c", script, *command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done, {name.split(".")[0] for name in json.loads(done.stdout.strip().splitlines()[-1])}


def _on(engine: Engine) -> dict[str, str]:
    """The environment of a command run on this database, with no other setting."""
    return {"PATH": "/usr/bin:/bin", "SERVICECAST_DATABASE_URL": engine.url.render_as_string()}


@pytest.mark.parametrize("command", [["--help"], [], ["check-config"], ["users", "--help"]])
def test_listing_the_commands_imports_no_library_that_only_some_command_needs(command: list[str]) -> None:
    _, imported = _imported(command)
    assert imported == set(), imported


def test_the_help_lists_each_lazy_command_as_its_real_command_would(capsys: pytest.CaptureFixture) -> None:
    lazy = typer.main.get_command(cli.app)
    real = typer.main.get_command(cli.app)
    real.commands.update({name: lazy_commands.real_command(name) for name in lazy_commands.MOUNTS})
    shown = []
    for group in (lazy, real):
        with pytest.raises(SystemExit):
            group.main(["--help"], prog_name="servicecast")
        shown.append(capsys.readouterr().out)
    assert "customers" in shown[0] and "retention" in shown[0]
    assert shown[0] == shown[1]


def test_writing_the_broker_config_imports_no_table_or_array_library(sqlite_engine, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "SERVICECAST_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False),
        "SERVICECAST_MQTT_URL": "mqtt://ingest:secret@127.0.0.1:1883",
    }
    done, imported = _imported(["machines", "broker-config", "--out", str(tmp_path / "broker")], env)
    assert "wrote " in done.stdout and (tmp_path / "broker" / credentials.ACL_FILE).exists(), done.stderr
    assert not imported & {"pandas", "pyarrow", "numpy"}, sorted(imported)


@pytest.mark.parametrize(
    ("command", "text", "said", "unused"),
    [
        (
            ["history", "import"],
            "tenant,machine,ts,kind,component\nacme,m1,2024-01-01T06:00:00Z,failure,pump\n",
            "imported 1 new label",
            {"pandas", "pyarrow"},
        ),
        (
            ["telemetry", "import"],
            "ts,tenant,machine,temperature_c\n2024-01-01T06:00:00Z,acme,m1,61.5\n",
            "imported 1 new message",
            {"pyarrow"},
        ),
    ],
    ids=["history", "telemetry"],
)
def test_a_csv_import_imports_no_table_or_parquet_library_it_does_not_use(
    sqlite_engine, tmp_path: Path, command: list[str], text: str, said: str, unused: set[str]
) -> None:
    register_fleet(sqlite_engine, "acme", ["m1"])
    (tmp_path / "rows.csv").write_text(text)
    done, imported = _imported([*command, str(tmp_path / "rows.csv")], _on(sqlite_engine))
    assert said in done.stdout, done.stdout + done.stderr
    assert not imported & unused, sorted(imported)


def test_a_command_on_a_database_at_head_imports_no_alembic(sqlite_engine) -> None:
    done, imported = _imported(["models", "list"], _on(sqlite_engine))
    assert done.stderr == "", done.stderr
    assert "alembic" not in imported, sorted(imported)


def test_adding_a_machine_imports_no_array_library(sqlite_engine) -> None:
    register_fleet(sqlite_engine, "acme", ["m1"])
    done, imported = _imported(["machines", "add", "acme", "m2", "--type", "pump"], _on(sqlite_engine))
    assert done.stderr == "", done.stderr
    assert not imported & {"numpy", "pandas", "pyarrow"}, sorted(imported)


def test_a_policy_pass_imports_no_web_framework(sqlite_engine) -> None:
    # It reads the catalog and raises the API's domain errors, and serves no HTTP: FastAPI (~0.5 CPU-s a
    # start) came in with the catalog's number types, the domain errors' module and the subscription bodies.
    done, imported = _imported(["policy", "--once"], _on(sqlite_engine))
    assert done.stderr == "", done.stderr
    assert "fastapi" not in imported, sorted(imported)


def test_erasing_a_tenant_id_no_customer_has_imports_no_table_or_parquet_library(sqlite_engine) -> None:
    # The archive's lock was taken through fleet.archive, and the lifecycle commands imported the archive,
    # export, retention and rollups modules as they were mounted: ~0.6 CPU-s of pandas and pyarrow a start.
    done, imported = _imported(["customers", "erase", "plant:7", "--confirm", "plant:7"], _on(sqlite_engine))
    assert done.stderr == "servicecast: no customer 'plant:7'\n", done.stderr
    assert not imported & {"pandas", "pyarrow", "numpy"}, sorted(imported)
