"""The models CLI on a throwaway Typer app: score, models list/promote/rollback, evaluate-cmapss wiring."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from models import versions
from models.cli import register
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate
from tests.models.fleet_support import PUMP, pump_model


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_commands_are_registered() -> None:
    result = CliRunner().invoke(_app(), ["--help"])
    assert result.exit_code == 0
    for name in ("train", "score", "models", "evaluate-cmapss"):
        assert name in result.output


def test_score_once_and_model_management(sqlite_engine, monkeypatch) -> None:
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", str(sqlite_engine.url))
    backfill(simulate(FleetConfig(machines=6, days=8, seed=4, step_seconds=3600)), sqlite_engine)
    first = versions.register(sqlite_engine, model=pump_model(), machine_type=PUMP)
    second = versions.register(sqlite_engine, model=pump_model(), machine_type=PUMP, activate=False)
    runner, app = CliRunner(), _app()

    result = runner.invoke(app, ["score", "--once"])
    assert result.exit_code == 0, result.output
    assert "scored 3 machines" in result.output

    listed = runner.invoke(app, ["models", "list"])
    assert f"* {first}" in listed.output and f"  {second}" in listed.output
    assert runner.invoke(app, ["models", "promote", second]).exit_code == 0
    assert versions.active_versions(sqlite_engine)[PUMP] == second
    assert runner.invoke(app, ["models", "rollback", PUMP]).exit_code == 0
    assert versions.active_versions(sqlite_engine)[PUMP] == first
    missing = runner.invoke(app, ["models", "promote", "nope"])
    assert missing.exit_code == 1


def test_promote_or_rollback_of_an_unknown_version_says_so_in_the_clis_one_line(sqlite_engine, monkeypatch):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", str(sqlite_engine.url))
    runner, app = CliRunner(), _app()
    for command in (["models", "promote", "nope"], ["models", "rollback", PUMP]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, (command, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("servicecast: "), (command, lines)
