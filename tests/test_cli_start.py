"""`servicecast --help` and light commands start without importing what only other commands need."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from servicecast import cli, lazy_commands

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


@pytest.mark.parametrize("command", [["--help"], [], ["check-config"], ["users", "--help"]])
def test_listing_the_commands_imports_no_library_that_only_some_command_needs(command: list[str]) -> None:
    script = IMPORTED_BY.format(heavy=set(HEAVY))
    done = subprocess.run(
        [sys.executable, "-c", script, *command], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported == [], imported


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
