"""`servicecast machines credentials` and `broker-config`: each machine's own identity on the broker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleet import credentials, errors
from fleet.bootstrap import EXIT_ERROR, fail, load_settings, ready_engine, serving_engine
from servicecast import cli_args

APPLY = "apply it with `servicecast machines broker-config --out DIR` and a Mosquitto reload (SIGHUP)"


def register(machines_app: typer.Typer) -> None:
    """Add the credential commands to `servicecast machines`."""
    machines_app.command("credentials")(machine_credentials)
    machines_app.command("broker-config")(broker_config)
    machines_app.command("sparkplug-credentials")(sparkplug_credentials)


def machine_credentials(
    tenant: cli_args.Tenant,
    machine: cli_args.Machine,
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke the machine's credential.")] = False,
) -> None:
    """Issue or rotate MACHINE's broker credential (the password is printed once), or --revoke it."""
    engine = ready_engine(load_settings())
    try:
        if revoke:
            credentials.revoke(engine=engine, tenant=tenant, machine=machine)
        else:
            issued = credentials.issue(engine=engine, tenant=tenant, machine=machine)
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    _report(f"{tenant}/{machine}", None if revoke else issued)


def sparkplug_credentials(
    group: Annotated[str | None, typer.Argument(help="The edge node's Sparkplug group id.")] = None,
    edge_node: Annotated[str | None, typer.Argument(help="The edge node id.")] = None,
    host: Annotated[str | None, typer.Option(help="A Sparkplug host id, instead of an edge node.")] = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke the credential.")] = False,
) -> None:
    """Issue or rotate a Sparkplug edge node's (GROUP EDGE_NODE) or host's (--host) credential."""
    node = group is not None and edge_node is not None
    if (host is None) != node or (host is not None and group is not None):
        raise fail("give GROUP and EDGE_NODE, or --host HOST_ID")
    engine = ready_engine(load_settings())
    try:
        name = credentials.host_username(host) if host else credentials.edge_node_username(group, edge_node)
        if revoke:
            credentials.revoke_sparkplug(engine=engine, username=name)
        else:
            issued = credentials.issue_sparkplug(engine=engine, username=name)
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    _report(name, None if revoke else issued)


def _report(name: str, issued: credentials.Issued | None) -> None:
    """Say that `name`'s credential is revoked (None), or show the new one once."""
    if issued is None:
        typer.echo(f"credential of {name} revoked; {APPLY}")
        return
    typer.echo(f"username: {issued.username}")
    typer.echo(f"password: {issued.password}")
    typer.echo(f"The password is shown only now (the database keeps its hash); {APPLY}.", err=True)


def broker_config(
    out: Annotated[Path, typer.Option(help="Folder of Mosquitto's password_file and acl_file.")],
) -> None:
    """Write Mosquitto's password and ACL files from the database (the ingester's: SERVICECAST_MQTT_URL)."""
    settings = load_settings()
    endpoint = settings.mqtt_endpoint()
    if endpoint is None or not endpoint.username or not endpoint.password:
        raise fail(
            "SERVICECAST_MQTT_URL must carry the ingester's user name and password (mqtt://user:pass@host)"
        )
    try:
        paths = credentials.write_broker_config(
            engine=serving_engine(settings, process="machines broker-config"),
            out=out,
            ingest_user=endpoint.username,
            ingest_password=endpoint.password,
        )
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    typer.echo(f"wrote {', '.join(str(p) for p in paths)}; reload Mosquitto: kill -HUP <its pid>")
