"""The `servicecast` command line: one entry point for every process and admin task."""

from __future__ import annotations

import logging
import sys
from datetime import date
from typing import Annotated

import typer

from api import policy_cli, routing_cli
from fleet import audit, errors, machine_types, migrate, registry, telemetry
from fleet.bootstrap import EXIT_ERROR, fail, load_settings, migration_errors, open_engine, ready_engine
from models import cli as models_cli
from servicecast import (
    bridge_cli,
    broker_cli,
    catalog_cli,
    customers_cli,
    evaluate_cli,
    history_cli,
    lifecycle_cli,
    market_cli,
    sparkplug_cli,
    telemetry_cli,
    types_cli,
)
from simulators.cli import simulate_app

app = typer.Typer(
    help="servicecast: predictive maintenance from MQTT telemetry to service offers.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
machines_app = typer.Typer(help="Register and list machines.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Inspect and replay quarantined messages.", no_args_is_help=True)
users_app = typer.Typer(help="API users and their keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(machines_app, name="machines")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(users_app, name="users")
app.add_typer(simulate_app, name="simulate")
market_cli.register(simulate_app)
customers_cli.register(app)
routing_cli.register(app)
policy_cli.register(app)
models_cli.register(app)
evaluate_cli.register(app)
types_cli.register(app)
catalog_cli.register(app)
broker_cli.register(machines_app)
history_cli.register(app, machines_app)
telemetry_cli.register(app)
lifecycle_cli.register(app, customers_cli.customers_app)
bridge_cli.register(app)
app.command("sparkplug")(sparkplug_cli.sparkplug)


@app.command("check-config")
def check_config() -> None:
    """Print the effective settings, secrets redacted."""
    for name, value in load_settings().redacted().items():
        typer.echo(f"{name}={'' if value is None else value}")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    settings = load_settings()
    engine = open_engine(settings)
    with migration_errors(settings):
        migrate.upgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current_revision(engine)}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Step the schema back to REVISION ('base' removes every table)."""
    settings = load_settings()
    engine = open_engine(settings)
    with migration_errors(settings):
        migrate.downgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and of this code."""
    engine = open_engine(load_settings())
    typer.echo(f"database: {migrate.current_revision(engine)}  code: {migrate.head_revision()}")


@machines_app.command("add")
def machines_add(
    tenant: str,
    machine: str,
    machine_type: Annotated[
        str, typer.Option("--type", help="Machine type, as defined by `servicecast types apply`.")
    ] = "unknown",
    serial: Annotated[str | None, typer.Option()] = None,
    installed: Annotated[str | None, typer.Option(help="Installation date, YYYY-MM-DD.")] = None,
    tier: Annotated[str, typer.Option(help="Service contract tier.")] = "basic",
    site: Annotated[str | None, typer.Option(help="Site name (created if new).")] = None,
) -> None:
    """Register MACHINE (its id in MQTT topics) for customer TENANT."""
    try:
        installed_on = date.fromisoformat(installed) if installed else None
    except ValueError:
        raise fail(f"--installed {installed!r} is not a date (YYYY-MM-DD)") from None
    engine = ready_engine(load_settings())
    try:
        registry.add_machine(
            engine=engine,
            tenant=tenant,
            code=machine,
            machine_type=machine_type,
            serial=serial,
            installed=installed_on,
            contract_tier=tier,
            site=site,
        )
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    typer.echo(f"machine {tenant}/{machine} added")
    with engine.connect() as conn:
        if not machine_types.defined(conn, [machine_type]):
            typer.echo(
                f"note: machine type {machine_type!r} is not defined yet: servicecast types apply FILE "
                "gives its sensors' names, units and limits"
            )


@machines_app.command("list")
def machines_list(tenant: Annotated[str | None, typer.Option(help="Only this customer.")] = None) -> None:
    """List machines."""
    for owner, machine in registry.list_machines(engine=ready_engine(load_settings()), tenant=tenant):
        typer.echo(f"{owner}/{machine.code}\t{machine.machine_type}\t{machine.contract_tier}")


@app.command("ingest")
def ingest(
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (default from settings).")] = None,
) -> None:
    """Subscribe to fleet telemetry and store it until SIGTERM."""
    from ingest.service import Ingester

    settings = load_settings()
    endpoint = settings.mqtt_endpoint()
    if endpoint is None:
        raise fail("invalid setting SERVICECAST_MQTT_URL: required for ingest")
    ingester = Ingester(
        settings=settings, engine=ready_engine(settings), endpoint=endpoint, client_id=client_id
    )
    raise typer.Exit(ingester.run())


@quarantine_app.command("list")
def quarantine_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Include rows already replayed.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows (0: all).", min=0)] = 100,
) -> None:
    """Show quarantined messages with their reasons."""
    engine = ready_engine(load_settings())
    rows = telemetry.pending_quarantine(engine, reason=reason, include_replayed=all_rows, limit=limit)
    for row in rows:
        replayed = f"\treplayed {row.replayed_at:%Y-%m-%dT%H:%M:%SZ}" if row.replayed_at else ""
        preview = _printable(row.payload[:80].decode("utf-8", "replace"))
        typer.echo(
            f"{row.id}\t{row.received_at:%Y-%m-%dT%H:%M:%SZ}\t{row.reason}\t{_printable(row.topic)}"
            f"\t{_printable(row.detail)}\t{preview}{replayed}"
        )
    typer.echo(f"{len(rows)} row(s)", err=True)


def _printable(text: str) -> str:
    """A device's text as one safe terminal field: control and format characters shown as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@quarantine_app.command("replay")
def quarantine_replay(
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
) -> None:
    """Re-ingest quarantined messages after a fix, a page at a time; safe to repeat."""
    from ingest.contract import Limits
    from ingest.quarantine import replay

    settings = load_settings()
    report = replay(
        engine=ready_engine(settings),
        reason=reason,
        auto_register=settings.ingest_auto_register,
        limits=Limits.from_settings(settings),
    )
    still = ", ".join(f"{k}: {v}" for k, v in sorted(report.still_quarantined.items())) or "none"
    typer.echo(
        f"examined {report.examined}, stored {report.stored}, already stored {report.duplicates}, "
        f"still quarantined: {still}"
    )
    if report.not_replayable:
        typer.echo(
            f"{report.not_replayable} row(s) keep only a prefix of a too-large payload and cannot be replayed"
        )
    if report.sparkplug:
        typer.echo(f"{report.sparkplug} row(s) from the Sparkplug host hold protobuf, not JSON: not replayed")


@app.command("demo")
def demo(
    serve: Annotated[
        bool, typer.Option(help="Serve the console and API on the demo data until Ctrl-C.")
    ] = True,
) -> None:
    """Simulated history and trained models, live telemetry over MQTT, alerts and offers, then the console."""
    from servicecast.demo import run_demo

    raise typer.Exit(run_demo(load_settings(), serve=serve))


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option(help="admin, field_service, account_manager or customer.")],
    customer: Annotated[str | None, typer.Option(help="Tenant id; required for the customer role.")] = None,
    account: Annotated[
        list[str] | None, typer.Option(help="Tenant id an account manager looks after.")
    ] = None,
    email: Annotated[str | None, typer.Option()] = None,
    expires_days: Annotated[int | None, typer.Option(help="The key expires after this many days.")] = None,
) -> None:
    """Create a user and print its API key (shown once, stored hashed)."""
    from api import auth

    try:
        _, token = auth.create_user(
            engine=ready_engine(load_settings()),
            name=name,
            role=role,
            customer=customer,
            accounts=tuple(account or ()),
            email=email,
            expires_days=expires_days,
            by=audit.operator(),
        )
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    typer.echo(token)
    print(f"user {name} ({role}) added; the key above is shown only once", file=sys.stderr)


@users_app.command("key")
def users_key(
    name: str, expires_days: Annotated[int | None, typer.Option(help="Expiry in days.")] = None
) -> None:
    """Issue another API key for a user."""
    from api import auth

    try:
        engine = ready_engine(load_settings())
        typer.echo(auth.issue_key(engine=engine, name=name, expires_days=expires_days, by=audit.operator()))
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None


@users_app.command("revoke")
def users_revoke(name: str) -> None:
    """Revoke every API key of a user."""
    from api import auth

    n = auth.revoke_keys(engine=ready_engine(load_settings()), name=name, by=audit.operator())
    typer.echo(f"revoked {n} key(s) of {name}")


@users_app.command("disable")
def users_disable(name: str) -> None:
    """Disable a user: its keys and console sessions stop working (`users enable` undoes it)."""
    _set_disabled(name, disabled=True)


@users_app.command("enable")
def users_enable(name: str) -> None:
    """Let a disabled user in again."""
    _set_disabled(name, disabled=False)


def _set_disabled(name: str, *, disabled: bool) -> None:
    from api import auth

    try:
        changed = auth.set_disabled(
            engine=ready_engine(load_settings()), name=name, disabled=disabled, by=audit.operator()
        )
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    state = "disabled" if disabled else "enabled"
    typer.echo(f"{name} {state}" if changed else f"{name} was {state} already")


@app.command("api")
def api_server() -> None:
    """Serve the HTTP API and the console with uvicorn (SERVICECAST_API_WORKERS processes)."""
    import uvicorn

    from servicecast import serve

    settings = load_settings()
    ready_engine(settings).dispose()
    options = serve.ServeOptions(
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        # uvicorn formats each access line before the logger drops it; skip that when nobody reads it.
        access_log=logging.getLevelName(settings.log_level.upper()) <= logging.INFO,
    )
    if settings.api_workers > 1:
        serve.serve(options, settings.api_workers)
        return
    uvicorn.run(
        serve.APP,
        factory=True,
        host=options.host,
        port=options.port,
        log_level=options.log_level,
        access_log=options.access_log,
    )
