"""`servicecast telemetry import`: a machine builder's stored readings and events, through the contract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import DBAPIError

from fleet import csv_import, errors
from fleet.bootstrap import EXIT_ERROR, database_failure, fail, load_settings, serving_engine
from ingest import telemetry_import
from ingest.contract import Limits
from servicecast import history_cli

telemetry_app = typer.Typer(help="Readings and events from files.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `telemetry import` to the CLI."""
    app.add_typer(telemetry_app, name="telemetry")
    telemetry_app.command("import")(telemetry_import_command)


def telemetry_import_command(
    file: Annotated[
        Path, typer.Argument(help="CSV (gzip if it ends in .gz) with one header line, or Parquet (.parquet).")
    ],
    mapping: history_cli.MappingFile = None,
    column: history_cli.Columns = None,
    tenant: history_cli.Tenant = None,
    kind: Annotated[
        str | None, typer.Option(help="telemetry (default: every unmapped column a reading) or events.")
    ] = None,
    time_format: history_cli.TimeFormat = None,
    timezone: history_cli.TimeZone = None,
    delimiter: history_cli.Delimiter = None,
    batch_size: Annotated[int, typer.Option(min=1, max=50_000, help="Rows per transaction.")] = 5000,
    reject_file: Annotated[Path | None, typer.Option(help="Also write the refused rows here (CSV).")] = None,
) -> None:
    """Store FILE's rows as the messages machines would send; bad rows are quarantined and listed by line."""
    settings = load_settings()
    engine = serving_engine(settings, process="telemetry import")
    spool = csv_import.RejectSpool() if reject_file else None  # dropped with the process
    # The first LISTED bad rows to list by line, the rest counted; all are in the quarantine (and the spool).
    aside = csv_import.ImportReport()

    def on_reject(reject: csv_import.Reject) -> None:
        aside.add_reject(reject, spool)

    try:
        if reject_file:  # fails here rather than after the rows are stored
            csv_import.check_reject_file(reject_file, file, whole=False)
        columns = csv_import.parse_columns(column)
        overrides = dict(tenant=tenant, kind=kind, time_format=time_format, timezone=timezone)
        cmap = csv_import.load_map(mapping).merged(columns=columns, delimiter=delimiter, **overrides)
        report = telemetry_import.import_file(
            engine=engine,
            path=file,
            mapping=cmap,
            batch_size=batch_size,
            limits=Limits.from_settings(settings),
            on_reject=on_reject,
        )
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    except DBAPIError as exc:  # still refused after the import's tries; its note says what is stored
        raise database_failure(settings, exc, doing="import into") from None
    history_cli.echo_rejects(aside, " (see `servicecast quarantine list`)")
    if spool is not None and report.passed_on:
        try:
            spool.write(reject_file)
        except errors.InvalidInput as exc:
            raise fail(
                f"{exc}; the rows were imported and the rejected ones quarantined", code=EXIT_ERROR
            ) from None
    quarantined = "; the rejected rows are quarantined" if report.passed_on else ""
    typer.echo(report.summary("message") + quarantined)
