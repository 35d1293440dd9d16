"""`servicecast retention run` and `claim-archive`, `rollups refresh`, `customers erase` and `export`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from fleet import archive_store, audit, display, erasure, errors, export_files, progress
from fleet.bootstrap import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    database_errors,
    fail,
    load_settings,
    ready_engine,
    serving_engine,
    with_notes,
)
from fleet.settings import Settings
from servicecast import cli_args

retention_app = typer.Typer(
    help="Retention per data class (settings SERVICECAST_RETAIN_*).", no_args_is_help=True
)
rollups_app = typer.Typer(help="Telemetry rollups (minute, hour, day).", no_args_is_help=True)


def register(app: typer.Typer, customers_app: typer.Typer) -> None:
    """Add the lifecycle commands to the CLI and to its `customers` group."""
    app.add_typer(retention_app, name="retention")
    app.add_typer(rollups_app, name="rollups")
    customers_app.command("erase")(customers_erase)
    customers_app.command("export")(customers_export)


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
) -> None:
    """Archive hot telemetry past SERVICECAST_HOT_DAYS and delete what is past each class's days."""
    from fleet import retention  # the archive's pandas and pyarrow: imported by the commands that read it

    settings = load_settings()
    try:
        with database_errors(settings, doing="run retention in"):  # the line names the steps done
            plan = retention.run(
                ready_engine(settings),
                settings=settings,
                now=datetime.now(UTC),
                dry_run=dry_run,
                report=_refreshing(settings),
            )
    # The rollup refresh of a late row's archived hour, or the archive's storage (full, not writable, in
    # memory): one line, with the steps done and not done.
    except (
        errors.ArchiveUnreadable,
        errors.ArchiveStoreTaken,
        errors.ErasureUndone,
        errors.InvalidInput,
        OSError,
    ) as exc:
        raise fail(with_notes(_why(exc), exc), code=EXIT_ERROR) from None
    verb = "would" if dry_run else "did"
    for step in plan.steps:
        note = f"; {step.note}" if step.note else ""
        cutoff = f"{step.cutoff:%Y-%m-%d %H:%M}"
        counted = display.count(step.count, step.noun)
        typer.echo(f"{step.data_class}: {verb} {step.action} {counted} older than {cutoff}{note}")


def _refreshing(settings: Settings) -> progress.Progress:
    """The rollup refresh's progress lines on stderr (stdout keeps the command's result only)."""
    return progress.Progress("rollup refresh", "machine-hour", every_s=settings.progress_every_s)


@retention_app.command("claim-archive")
def retention_claim_archive() -> None:
    """Make this database the owner of its folder in SERVICECAST_ARCHIVE_URL: a copy, a moved database."""
    from fleet import archive

    settings = load_settings()
    try:
        with database_errors(settings, doing="claim the archive folder in"):
            path = archive_store.adopt(ready_engine(settings), archive.location(settings.archive_url))
    except OSError as exc:  # the archive's storage (not writable, unreachable), as `retention run` says it
        raise fail(f"cannot claim the archive folder: {exc}", code=EXIT_ERROR) from None
    typer.echo(
        f"this database owns the archive folder {path} now; a database that archived there before (the one "
        "this was copied from) stops at its next archive run, retention or erasure, touching nothing"
    )


@rollups_app.command("refresh")
def rollups_refresh() -> None:
    """Recompute the rollups of every hour that got rows since the last refresh."""
    from fleet import retention, rollups

    settings = load_settings()
    try:
        with database_errors(settings, doing="refresh the rollups in"):
            horizons = retention.rollup_horizons(settings, datetime.now(UTC))
            hours = rollups.refresh(
                serving_engine(settings, process="rollups refresh"),
                archive_url=settings.archive_url,
                horizons=horizons,
                report=_refreshing(settings),
            )
    except errors.ArchiveUnreadable as exc:  # a late row's hour is archived in that file
        raise fail(_why(exc), code=EXIT_ERROR) from None
    typer.echo(f"refreshed {display.count(hours, 'machine-hour')}")


def customers_erase(
    tenant: Annotated[str | None, typer.Argument(help="The customer's tenant id.")] = None,
    confirm: Annotated[str | None, typer.Option("--confirm", help="The tenant id again.")] = None,
    reapply: Annotated[
        bool,
        typer.Option(
            "--reapply",
            help="Erase again every customer the archive's erasure ledger lists as erased (after a restore).",
        ),
    ] = False,
) -> None:
    """Erase every trace of TENANT (rows, archive files); audit lines keep a pseudonym; prints the receipt.

    --reapply: erase again the customers a database put back from an older copy holds though erased.
    """
    settings = load_settings()
    if reapply == (tenant is not None):
        raise fail("give a TENANT with --confirm TENANT, or --reapply alone", code=EXIT_ERROR)
    doing = "erase again the customers erased before in" if reapply else f"erase {tenant!r} in"
    try:
        # The rows go in one transaction: a database lost before its commit leaves the customer whole.
        with database_errors(settings, doing=doing):
            engine, url = ready_engine(settings), settings.archive_url
            by, now = audit.operator().name, datetime.now(UTC)
            if reapply:
                receipts = erasure.reapply(engine, by=by, archive_url=url, now=now)
            else:
                receipts = [
                    erasure.erase(engine, tenant=tenant, confirm=confirm, by=by, archive_url=url, now=now)
                ]
    except (erasure.NotConfirmed, LookupError, errors.ArchiveStoreTaken) as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    except OSError as exc:  # the archive's storage: the rows were rolled back; its notes say what is left
        raise fail(with_notes(f"cannot erase {tenant or 'again'!r}: {exc}", exc), code=EXIT_ERROR) from None
    if reapply and not receipts:
        typer.echo("no customer of this database is listed as erased: nothing to erase again")
    for receipt in receipts:
        typer.echo(json.dumps(receipt, default=str, indent=2))
        for left in receipt["left_in_archive"]:  # also in the receipt; a line each, so that none goes unseen
            note = f"servicecast: left in the archive, check it by hand: {left['file']} ({left['why']})"
            typer.echo(note, err=True)


def customers_export(
    tenant: cli_args.Tenant,
    directory: Annotated[Path, typer.Argument(help="Folder the ZIP is written into (made if missing).")],
) -> None:
    """Write TENANT's data (Parquet, CSV, manifest) as one ZIP into DIRECTORY."""
    settings = load_settings()
    with database_errors(settings, doing=f"export {tenant!r} from"):
        engine = serving_engine(settings, process="customers export")  # none of an erased customer's data
        _export(engine, tenant, directory, archive_url=settings.archive_url)


def _export(engine: Engine, tenant: str, directory: Path, *, archive_url: str) -> None:
    from fleet import export

    chunks = export.stream(engine, tenant=tenant, archive_url=archive_url)
    try:
        first = next(chunks)  # looks the customer up and checks its archive files: no file named yet
    except (LookupError, errors.ArchiveUnreadable) as exc:
        raise fail(_why(exc), code=EXIT_ERROR) from None
    stem = f"servicecast-export-{tenant}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name in export_files.remove_killed(directory):
            typer.echo(
                f"servicecast: removed {directory / name}, left by an export that was killed", err=True
            )
        # A hidden file until complete: a failed export leaves no ZIP that looks whole.
        with export_files.writing(directory) as out:
            out.write(first)
            for chunk in chunks:
                out.write(chunk)
            path = export_files.publish(out, directory, stem)
    # The target, an archive file that cannot be read, the customer's erasure, the database, or Ctrl-C.
    except (OSError, errors.ArchiveUnreadable, LookupError, DBAPIError, KeyboardInterrupt) as exc:
        if isinstance(exc, DBAPIError):
            raise
        if isinstance(exc, KeyboardInterrupt):
            raise fail("interrupted: no export written", code=EXIT_INTERRUPTED) from None
        raise fail(_why(exc), code=EXIT_ERROR) from None
    typer.echo(str(path))


def _why(exc: Exception) -> str:
    """A failure in one line; an unreadable archive file with its full path and the reader's own words."""
    return exc.one_line() if isinstance(exc, errors.ArchiveUnreadable) else str(exc)
