"""`servicecast history import` and `servicecast machines import`: a fleet's records from ERP/CRM CSV."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from fleet import csv_import, display, errors
from fleet.bootstrap import EXIT_ERROR, database_failure, fail, load_settings, serving_engine

history_app = typer.Typer(help="Service history (failures, replacements, maintenance) as labels.")
File = Annotated[Path, typer.Argument(help="CSV file (gzip if it ends in .gz), one header line.")]
MappingFile = Annotated[
    Path | None, typer.Option("--mapping", help=r"TOML: tenant, kind, time_format, …, \[columns], \[kinds].")
]
Columns = Annotated[
    list[str] | None, typer.Option("--column", help="FIELD=COLUMN, e.g. ts=datetime (repeatable).")
]
Tenant = Annotated[str | None, typer.Option(help="Tenant of every row (when the file has no tenant column).")]
TimeFormat = Annotated[str | None, typer.Option(help="strptime format of the times (default ISO 8601).")]
TimeZone = Annotated[str | None, typer.Option("--timezone", help="Zone of times without offset (UTC).")]
Delimiter = Annotated[str | None, typer.Option(help="Field separator (default ',').")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Check and count; write nothing.")]
RejectFile = Annotated[
    Path | None,
    typer.Option(help="Import the good rows and write the bad ones here (default: refuse the whole file)."),
]


def register(app: typer.Typer, machines_app: typer.Typer) -> None:
    """Add `history import` to the CLI and `import` to `servicecast machines`."""
    app.add_typer(history_app, name="history")
    history_app.command("import")(history_import_command)
    machines_app.command("import")(machines_import_command)


def _run(
    load: Callable[[Engine, dict[str, str]], csv_import.ImportReport],
    *,
    process: str,
    noun: str,
    column: list[str] | None,
    reject_file: Path | None,
) -> None:
    """Open the store as `process`, import with `load(engine, columns)`, report; bad rows refuse the file or
    go aside."""
    settings = load_settings()
    engine = serving_engine(settings, process=process)
    try:
        report = load(engine, csv_import.parse_columns(column))
    except csv_import.ImportRefused as exc:
        echo_rejects(exc.report)
        raise fail(
            f"{display.count(exc.report.rejected, 'bad row')}: nothing imported", code=EXIT_ERROR
        ) from None
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    except DBAPIError as exc:  # the file is written in one transaction, rolled back by the server
        exc.add_note("nothing of the file is stored; import it again")
        raise database_failure(settings, exc, doing="import into") from None
    typer.echo(report.summary(noun))
    for note in report.notes:
        typer.echo(note)
    if report.rejected and report.written:
        typer.echo(f"{display.count(report.rejected, 'bad row')} written to {reject_file}")


def echo_rejects(report: csv_import.ImportReport, more: str = "") -> None:
    """The bad rows `report` keeps, a stderr line each by line number, then how many more (and `more`)."""
    for reject in report.rejects:
        typer.echo(f"line {reject.line}: {display.printable(reject.reason)}", err=True)
    if report.passed_on:
        typer.echo(f"… and {report.passed_on} more{more}", err=True)


def history_import_command(
    file: File,
    mapping: MappingFile = None,
    column: Columns = None,
    tenant: Tenant = None,
    kind: Annotated[
        str | None, typer.Option(help="Every row's kind: failure, replacement, maintenance, no_fault, visit.")
    ] = None,
    time_format: TimeFormat = None,
    timezone: TimeZone = None,
    delimiter: Delimiter = None,
    dry_run: DryRun = False,
    reject_file: RejectFile = None,
) -> None:
    """Import FILE's failures, part replacements and maintenance visits as labels (source `import`)."""

    def load(engine: Engine, columns: dict[str, str]) -> csv_import.ImportReport:
        from fleet import history_import  # numpy: not for the other `machines` commands

        overrides = dict(tenant=tenant, kind=kind, time_format=time_format, timezone=timezone)
        cmap = csv_import.load_map(mapping).merged(columns=columns, delimiter=delimiter, **overrides)
        return history_import.import_history(
            engine=engine, path=file, mapping=cmap, dry_run=dry_run, reject_file=reject_file
        )

    _run(load, process="history import", noun="label", column=column, reject_file=reject_file)


def machines_import_command(
    file: File,
    mapping: MappingFile = None,
    column: Columns = None,
    tenant: Tenant = None,
    age_at: Annotated[
        str | None, typer.Option(help="Date an `age` column (years) counts back from (default today).")
    ] = None,
    purposes: Annotated[
        list[str] | None,
        typer.Option("--purpose", help="offers or product_improvement, granted by customers it creates."),
    ] = None,
    delimiter: Delimiter = None,
    dry_run: DryRun = False,
    reject_file: RejectFile = None,
) -> None:
    """Register FILE's machines: machine, tenant, machine_type (model), installed or age, site, serial."""

    def load(engine: Engine, columns: dict[str, str]) -> csv_import.ImportReport:
        from fleet import machine_import  # numpy: not for the other `machines` commands

        cmap = csv_import.load_map(mapping).merged(
            columns=columns, tenant=tenant, age_at=age_at, delimiter=delimiter
        )
        return machine_import.import_machines(
            engine=engine,
            path=file,
            mapping=cmap,
            purposes=purposes or (),
            dry_run=dry_run,
            reject_file=reject_file,
        )

    _run(load, process="machines import", noun="machine", column=column, reject_file=reject_file)
