"""`servicecast types`: define machine types from a YAML or TOML file, list them, show one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleet import audit, display, errors, machine_types
from fleet.bootstrap import EXIT_ERROR, fail, load_settings, ready_engine
from fleet.db import session

types_app = typer.Typer(
    help="Machine types as data: sensors, limits, failure modes, codes.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the `types` commands to the `servicecast` CLI."""
    app.add_typer(types_app, name="types")


@types_app.command("apply")
def types_apply(
    file: Annotated[Path, typer.Argument(help="A types file, .yaml/.yml or .toml.")],
) -> None:
    """Store the types of FILE: a changed type gets a new version, an unchanged one stays as it is."""
    engine = ready_engine(load_settings())
    try:
        applied = machine_types.apply_file(engine=engine, path=file, by=audit.operator())
    except errors.ServicecastError as exc:
        raise fail(f"{file} was not applied, nothing changed:\n{exc}", code=EXIT_ERROR) from None
    finally:
        engine.dispose()
    for a in applied:
        typer.echo(f"{a.name}\tversion {a.version}\t{'new version' if a.changed else 'unchanged'}")


@types_app.command("list")
def types_list() -> None:
    """Each machine type with its newest version, sensors and failure modes."""
    engine = ready_engine(load_settings())
    try:
        for t in machine_types.list_types(engine=engine):
            modes = len(t.definition.get("failure_modes", []))
            typer.echo(
                f"{t.name}\tversion {t.version}\t{display.count(len(t.sensors), 'sensor')}\t"
                f"{display.count(modes, 'failure mode')}\t"
                f"applied {t.applied_at:%Y-%m-%d %H:%M} UTC"
            )
    finally:
        engine.dispose()


@types_app.command("show")
def types_show(
    name: Annotated[str, typer.Argument(help="The machine type's name.")],
    version: Annotated[int | None, typer.Option(help="An earlier version (default: the newest).")] = None,
) -> None:
    """Print a type's definition as a types file (applying it again changes nothing)."""
    engine = ready_engine(load_settings())
    try:
        with session(engine) as sess:
            found = machine_types.get(sess, name, version)
    except errors.NotFound as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    finally:
        engine.dispose()
    typer.echo(f"# {found.name} version {found.version}, applied {found.applied_at:%Y-%m-%d %H:%M} UTC")
    typer.echo(machine_types.to_yaml(found.definition), nl=False)
