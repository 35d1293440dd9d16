"""`servicecast catalog`: the service catalog's versions — list, add from a file, activate, show."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api import catalog, catalog_versions
from fleet import audit, display, errors, text_files
from fleet.bootstrap import EXIT_ERROR, fail, load_settings, ready_engine
from fleet.db import for_writing, session
from fleet.tables import CatalogVersion, utcnow

catalog_app = typer.Typer(
    help="Service catalog versions: offer types, prices, texts, downtime economics.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the `catalog` commands to the `servicecast` CLI."""
    app.add_typer(catalog_app, name="catalog")


@catalog_app.command("list")
def catalog_list() -> None:
    """Every stored version, newest first, then the shipped file; the one in force is marked."""
    engine = ready_engine(load_settings())
    try:
        with session(engine) as sess:
            listed = catalog_versions.listing(sess)
    finally:
        engine.dispose()
    for v in listed:
        origin = "shipped file" if v.shipped else f"added {v.added_at:%Y-%m-%d %H:%M} UTC by {v.added_by}"
        mark = "in force" if v.active else ""
        typer.echo(
            f"version {v.version}\t{v.currency}\t{display.count(v.items, 'item')}\t{origin}\t{mark}".rstrip()
        )


@catalog_app.command("add")
def catalog_add(
    file: Annotated[Path, typer.Argument(help="A catalog file (YAML, as api/catalog.yaml).")],
    activate: Annotated[bool, typer.Option(help="Put it in force for new offers at once.")] = False,
) -> None:
    """Check FILE as the console does and store it as a new version (inactive unless --activate)."""
    try:
        source = text_files.read(file)
    except text_files.FileProblem as exc:
        raise fail(f"{file} cannot be read: {exc.reason}", code=EXIT_ERROR) from None
    engine = ready_engine(load_settings())
    by = audit.operator()
    try:
        with session(for_writing(engine)) as sess:  # problems named by the file's own lines
            added = catalog_versions.add(sess, source=source, by=by, now=utcnow(), name=str(file))
            if activate:
                catalog_versions.activate(sess, version=added.version, by=by, now=utcnow())
    except errors.ServicecastError as exc:
        raise fail(f"{file} was not added, nothing changed:\n{exc}", code=EXIT_ERROR) from None
    finally:
        engine.dispose()
    state = "in force for new offers" if activate else "stored, not in force (`servicecast catalog activate`)"
    items = display.count(len(added.items), "item")
    typer.echo(f"catalog version {added.version}: {items}, {added.currency}, {state}")


@catalog_app.command("activate")
def catalog_activate(
    version: Annotated[int, typer.Argument(help="A stored version's number (`catalog list`).")],
) -> None:
    """Put a stored version in force for new offers from now on; offers already made keep theirs."""
    engine = ready_engine(load_settings())
    try:
        with session(for_writing(engine)) as sess:
            before = catalog_versions.in_force(sess).version
            catalog_versions.activate(sess, version=version, by=audit.operator(), now=utcnow())
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    finally:
        engine.dispose()
    typer.echo(f"catalog version {version} in force (was {before})")


@catalog_app.command("show")
def catalog_show(
    version: Annotated[
        int | None, typer.Argument(help="A stored version (default: the one in force).")
    ] = None,
) -> None:
    """Print a version's file as it was added; adding it again is refused as a taken version number."""
    engine = ready_engine(load_settings())
    try:
        with session(engine) as sess:
            if version is None:
                version = catalog_versions.in_force(sess).version
            row = sess.get(CatalogVersion, version)
    finally:
        engine.dispose()
    if row is not None:
        typer.echo(row.source, nl=not row.source.endswith("\n"))
    elif version == catalog.default().version:
        typer.echo(catalog.DEFAULT_FILE.read_text(encoding="utf-8"), nl=False)
    else:
        raise fail(f"catalog version {version} not found", code=EXIT_ERROR)
