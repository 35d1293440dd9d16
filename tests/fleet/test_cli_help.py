"""Every command's `--help` says what each option and argument is for (`users add --email` said nothing), and
shows each help whole (Rich takes `[word]` for markup and drops it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from servicecast import lazy_commands
from servicecast.cli import app

runner = CliRunner()


def _commands(group: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    """Every runnable command under `group` with its path, the lazy top-level ones mounted."""
    context = typer.Context(group)
    for name in group.list_commands(context):
        lazy = not path and name in lazy_commands.MOUNTS
        command = lazy_commands.real_command(name) if lazy else group.get_command(context, name)
        if hasattr(command, "commands"):
            yield from _commands(command, [*path, name])
        else:
            yield [*path, name], command


def test_every_options_help_is_shown_whole():
    missing = []
    commands = list(_commands(typer.main.get_command(app), []))
    assert len(commands) > 40  # the sub-apps' commands are walked too
    for path, command in commands:
        shown = " ".join(runner.invoke(app, [*path, "--help"], env={"COLUMNS": "3000"}).output.split())
        for param in command.params:
            written = (getattr(param, "help", None) or "").replace("\\[", "[")  # Rich shows `\[` as `[`
            written = " ".join(written.split())
            if written not in shown:
                missing.append(f"servicecast {' '.join(path)} --{param.name}: {written!r}")
    assert not missing, "\n".join(missing)


def test_every_option_and_argument_has_a_help_text():
    commands = list(_commands(typer.main.get_command(app), []))
    assert len(commands) > 40
    silent = [
        f"servicecast {' '.join(path)}: {param.opts[0] if param.param_type_name == 'option' else param.name}"
        for path, command in commands
        for param in command.params
        if not (getattr(param, "help", None) or "").strip()
    ]
    assert silent == []
