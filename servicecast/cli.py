"""The `servicecast` command line: one entry point for every process and admin task."""

from __future__ import annotations

import logging
import sys
from datetime import date
from typing import Annotated, Any

import typer

from fleet import display, errors
from fleet.bootstrap import (
    EXIT_ERROR,
    fail,
    load_settings,
    migration_errors,
    open_engine,
    ready_engine,
    serving_engine,
)
from servicecast import cli_args, lazy_commands


class _Group(lazy_commands.LazyGroup):
    """The `servicecast` group: a shipped file a command reads as it starts (the simulator's types file, on
    import; the service catalog) that is broken is a line per problem naming the file, line and reason, and
    exit 2, as a bad setting is."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except errors.InvalidInput as exc:
            if (unread := _unread_file(exc)) is None:
                raise
            raise fail(f"cannot read {unread}: {exc}") from None


def _unread_file(exc: errors.InvalidInput) -> str | None:
    """Which shipped file `exc` refuses ("the catalog"), or None when it is another refusal."""
    from api.catalog import CatalogFileError
    from fleet.type_files import TypesFileError

    return {TypesFileError: "the machine types", CatalogFileError: "the catalog"}.get(type(exc))


app = typer.Typer(
    cls=_Group,
    help="servicecast: predictive maintenance from MQTT telemetry to service offers.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
machines_app = typer.Typer(
    help="Register machines (one by one or from a CSV file), list them, issue their broker identities.",
    no_args_is_help=True,
)
quarantine_app = typer.Typer(help="Inspect and replay quarantined messages.", no_args_is_help=True)
users_app = typer.Typer(help="API users and their keys.", no_args_is_help=True)


# Each mount imports its modules and registers their commands (a module name: its `register(app)`);
# `lazy_commands` runs it only when one of them runs. The placeholders keep `--help` as it was: the same
# names in the same order (commands first, then groups, each in registration order) and first help lines.
def _mount_simulate(part: typer.Typer) -> None:
    from servicecast import market_cli
    from simulators.cli import simulate_app

    part.add_typer(simulate_app, name="simulate")
    market_cli.register(simulate_app)


def _mount_customers(part: typer.Typer) -> None:
    from servicecast import customers_cli, lifecycle_cli

    customers_cli.register(part)
    lifecycle_cli.register(part, customers_cli.customers_app)


def _mount_machines(part: typer.Typer) -> None:
    from servicecast import broker_cli, history_cli

    part.add_typer(machines_app, name="machines")
    broker_cli.register(machines_app)
    history_cli.register(part, machines_app)
    machines_app.command("add")(machines_add)
    machines_app.command("list")(machines_list)


def _mount_sparkplug(part: typer.Typer) -> None:
    from servicecast import sparkplug_cli

    part.command("sparkplug")(sparkplug_cli.sparkplug)


for _name, _help, _mount in (
    ("route", "Deliver approved offers from the outbox to the CRM webhook and by e-mail (at least once).",
     "api.routing_cli"),
    ("policy", "Open and update alerts, propose offers and escalate overdue alerts from new predictions.",
     "api.policy_cli"),
    ("train", "Train one model per machine type; activate it only if it beats the active one on a held-out "
     "window.", "models.cli"),
    ("score", "Rescore machines with new telemetry using the active model of their type.", "models.cli"),
    ("evaluate-cmapss", "Evaluate the C-MAPSS RUL model on a train/test/RUL triple.", "models.cli"),
    ("evaluate", "Backtest on a seeded simulated fleet (train early, test later) and write report.md + "
     "backtest.json.", "servicecast.evaluate_cli"),
    ("sparkplug", "Subscribe to spBv1.0/#, publish STATE, store births and data through the ingest pipeline.",
     _mount_sparkplug),
):  # fmt: skip
    lazy_commands.command(app, _name, help=_help, mount=_mount)
app.add_typer(db_app, name="db")
lazy_commands.group(app, "machines", help=machines_app.info.help, mount=_mount_machines)
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(users_app, name="users")
for _name, _help, _mount in (
    ("simulate", "Simulate a fleet with known failures (live over MQTT or backfilled), or replay C-MAPSS.",
     _mount_simulate),
    ("customers", "Register customers (tenants), record their data uses, erase or export their data.",
     _mount_customers),
    ("models", "Registered model versions.", "models.cli"),
    ("types", "Machine types as data: sensors, limits, failure modes, codes.", "servicecast.types_cli"),
    ("catalog", "Service catalog versions: offer types, prices, texts, downtime economics.",
     "servicecast.catalog_cli"),
    ("history", "Service history (failures, replacements, maintenance) as labels.", _mount_machines),
    ("telemetry", "Readings and events from files.", "servicecast.telemetry_cli"),
    ("retention", "Retention per data class (settings SERVICECAST_RETAIN_*).", _mount_customers),
    ("rollups", "Telemetry rollups (minute, hour, day).", _mount_customers),
    ("bridge", "Bridges from machines' own protocols to servicecast.", "servicecast.bridge_cli"),
):  # fmt: skip
    lazy_commands.group(app, _name, help=_help, mount=_mount)


@app.command("check-config")
def check_config() -> None:
    """Print the effective settings, secrets redacted."""
    for name, value in load_settings().redacted().items():
        typer.echo(f"{name}={_as_variable(value)}")


def _as_variable(value: object) -> str:
    """`value` written as its variable takes it: a list comma-separated, a switch `true` or `false`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Revision id, e.g. 0034, or head.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from fleet import migrate

    settings = load_settings()
    engine = open_engine(settings)
    with migration_errors(settings):
        migrate.upgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current_revision(engine)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Revision id to step back to, or base.")],
) -> None:
    """Step the schema back to REVISION ('base' removes every table)."""
    from fleet import migrate

    settings = load_settings()
    engine = open_engine(settings)
    with migration_errors(settings):
        migrate.downgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and of this code."""
    from fleet import migrate

    engine = open_engine(load_settings())
    typer.echo(f"database: {migrate.current_revision(engine)}  code: {migrate.head_revision()}")


def machines_add(
    tenant: cli_args.Tenant,
    machine: cli_args.Machine,
    machine_type: Annotated[
        str, typer.Option("--type", help="Machine type, as defined by `servicecast types apply`.")
    ] = "unknown",
    serial: Annotated[str | None, typer.Option(help="The maker's serial number.")] = None,
    installed: Annotated[str | None, typer.Option(help="Installation date, YYYY-MM-DD.")] = None,
    tier: Annotated[str, typer.Option(help="Service contract tier.")] = "basic",
    site: Annotated[str | None, typer.Option(help="Site name (created if new).")] = None,
    site_timezone: Annotated[
        str | None, typer.Option(help="The site's IANA time zone, e.g. Europe/Berlin (default UTC).")
    ] = None,
) -> None:
    """Register MACHINE (its id in MQTT topics) for customer TENANT."""
    from fleet import machine_import, registry

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
            site_timezone=site_timezone,
        )
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    typer.echo(f"machine {tenant}/{machine} added")
    with engine.connect() as conn:
        for note in machine_import.undefined_types(conn, [{"machine_type": machine_type}]):
            typer.echo(note)


def machines_list(tenant: Annotated[str | None, typer.Option(help="Only this customer.")] = None) -> None:
    """List machines."""
    from fleet import registry

    try:
        machines = registry.list_machines(engine=ready_engine(load_settings()), tenant=tenant)
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    for owner, machine in machines:
        typer.echo(f"{owner}/{machine.code}\t{machine.machine_type}\t{machine.contract_tier}")


@app.command("ingest")
def ingest(
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (default from settings).")] = None,
) -> None:
    """Subscribe to fleet telemetry and events and store them until SIGTERM."""
    from ingest.service import Ingester

    settings = load_settings()
    endpoint = settings.mqtt_endpoint()
    if endpoint is None:
        raise fail("invalid setting SERVICECAST_MQTT_URL: required for ingest")
    ingester = Ingester(
        settings=settings,
        engine=serving_engine(settings, process="ingest"),
        endpoint=endpoint,
        client_id=client_id,
    )
    raise typer.Exit(ingester.run())


def _check_reason(engine: Any, reason: str | None) -> None:
    """Exit 2 with one line naming the known reasons for a `--reason` no quarantine row can have."""
    from fleet import telemetry

    try:
        telemetry.check_quarantine_reason(engine, reason)
    except errors.InvalidInput as exc:
        raise fail(f"--reason: {exc}") from None


@quarantine_app.command("list")
def quarantine_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Include rows already replayed.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows (0: all).", min=0)] = 100,
) -> None:
    """Show quarantined messages with their reasons."""
    from fleet import telemetry

    engine = ready_engine(load_settings())
    _check_reason(engine, reason)
    rows = telemetry.pending_quarantine(engine, reason=reason, include_replayed=all_rows, limit=limit)
    for row in rows:
        replayed = f"\treplayed {row.replayed_at:%Y-%m-%dT%H:%M:%SZ}" if row.replayed_at else ""
        preview = display.printable(row.payload[:80].decode("utf-8", "replace"))
        typer.echo(
            f"{row.id}\t{row.received_at:%Y-%m-%dT%H:%M:%SZ}\t{row.reason}\t{display.printable(row.topic)}"
            f"\t{display.printable(row.detail)}\t{preview}{replayed}"
        )
    typer.echo(display.count(len(rows), "row"), err=True)


@quarantine_app.command("replay")
def quarantine_replay(
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
) -> None:
    """Re-ingest quarantined messages after a fix, a page at a time; safe to repeat."""
    from ingest.contract import Limits
    from ingest.quarantine import replay

    settings = load_settings()
    engine = serving_engine(settings, process="quarantine replay")
    _check_reason(engine, reason)
    report = replay(
        engine=engine,
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
            f"{display.count(report.not_replayable, 'row')} with only a prefix of a too-large payload kept: "
            "cannot be replayed"
        )
    if report.sparkplug:
        rows = display.count(report.sparkplug, "row")
        typer.echo(f"{rows} from the Sparkplug host with protobuf, not JSON: not replayed")


@app.command("demo")
def demo(
    serve: Annotated[
        bool, typer.Option(help="Serve the console and API on the demo data until Ctrl-C.")
    ] = True,
) -> None:
    """Simulated history and trained models, live telemetry over MQTT, alerts and offers, then the console."""
    # The shipped files first (the types file is read on import), in the order the demo's own imports and
    # start read them: a broken one stops it before the ~3 s of CPU that importing models and the API take.
    from api import catalog
    from servicecast import demo_database
    from simulators import machine_types  # noqa: F401

    settings = load_settings()
    catalog.default()
    engine, fresh = demo_database.opened(settings)
    from servicecast.demo import run_demo

    raise typer.Exit(run_demo(settings, engine, fresh=fresh, serve=serve))


@users_app.command("add")
def users_add(
    name: cli_args.UserName,
    role: Annotated[str, typer.Option(help="admin, field_service, account_manager or customer.")],
    customer: Annotated[str | None, typer.Option(help="Tenant id; required for the customer role.")] = None,
    account: Annotated[
        list[str] | None, typer.Option(help="Tenant id an account manager looks after.")
    ] = None,
    email: Annotated[str | None, typer.Option(help="The user's e-mail address, kept on its record.")] = None,
    expires_days: Annotated[int | None, typer.Option(help="The key expires after this many days.")] = None,
) -> None:
    """Create a user and print its API key (shown once, stored hashed)."""
    from api import auth
    from fleet import audit

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
    name: cli_args.UserName, expires_days: Annotated[int | None, typer.Option(help="Expiry in days.")] = None
) -> None:
    """Issue another API key for a user."""
    from api import auth
    from fleet import audit

    try:
        engine = ready_engine(load_settings())
        typer.echo(auth.issue_key(engine=engine, name=name, expires_days=expires_days, by=audit.operator()))
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None


@users_app.command("revoke")
def users_revoke(name: cli_args.UserName) -> None:
    """Revoke every API key of a user."""
    from api import auth
    from fleet import audit

    n = auth.revoke_keys(engine=ready_engine(load_settings()), name=name, by=audit.operator())
    typer.echo(f"revoked {n} key(s) of {name}")


@users_app.command("disable")
def users_disable(name: cli_args.UserName) -> None:
    """Disable a user: its keys and console sessions stop working (`users enable` undoes it)."""
    _set_disabled(name, disabled=True)


@users_app.command("enable")
def users_enable(name: cli_args.UserName) -> None:
    """Let a disabled user in again."""
    _set_disabled(name, disabled=False)


def _set_disabled(name: str, *, disabled: bool) -> None:
    from api import auth
    from fleet import audit

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
    serving_engine(settings, process="api").dispose()
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
