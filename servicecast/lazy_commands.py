"""Top-level commands whose modules are imported only when one of them runs: `servicecast --help` and a light
command do not pay for pandas, scikit-learn, FastAPI or asyncua that other commands need."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperGroup

# What registers a real command on the app it is given: a module's name (its `register(app)`) or a function.
Mount = str | Callable[[typer.Typer], None]
MOUNTS: dict[str, Mount] = {}  # top-level name -> what mounts its real command


class LazyGroup(TyperGroup):
    """The `servicecast` group: help lists a lazy command from its placeholder (same name and first help
    line); running it, or asking for its own help, mounts the real one first."""

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name in MOUNTS:
            command = real_command(name)
        return name, command, rest


def real_command(name: str) -> Any:
    """The real command mounted under `name`, as a fresh command object (as Typer builds it per call)."""
    return typer.main.get_group(_mounted(MOUNTS[name])).commands[name]


@functools.cache
def _mounted(mount: Mount) -> typer.Typer:
    """An app holding what `mount` registers; once per process: a module's `register` adds to shared
    sub-apps (e.g. `customers erase` to `customers`), so a second call would add its commands again."""
    part = typer.Typer()
    if isinstance(mount, str):
        importlib.import_module(mount).register(part)
    else:
        mount(part)
    return part


def command(app: typer.Typer, name: str, *, help: str, mount: Mount) -> None:
    """List the top-level command `name` with `help` (its first help line) until `mount` is needed."""
    MOUNTS[name] = mount
    app.command(name, help=help)(_placeholder)


def group(app: typer.Typer, name: str, *, help: str, mount: Mount) -> None:
    """List the top-level group `name` with `help` until `mount` is needed."""
    MOUNTS[name] = mount
    app.add_typer(typer.Typer(help=help), name=name)


def _placeholder() -> None:
    """Never runs: `LazyGroup.resolve_command` swaps in the real command."""
