"""`servicecast customers`: register customers, list them, grant and revoke their data uses (audited)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import Engine

from fleet import audit, display, errors, registry
from fleet.bootstrap import EXIT_ERROR, fail, load_settings, ready_engine
from fleet.db import for_writing, session
from servicecast import cli_args

customers_app = typer.Typer(
    help="Register customers (tenants), record their data uses, erase or export their data.",
    no_args_is_help=True,
)
Purpose = Annotated[str, typer.Argument(help="service, offers or product_improvement.")]
Reference = Annotated[
    str | None,
    typer.Option(help="The customer's declaration: contract clause, letter; kept in the audit trail."),
]


def register(app: typer.Typer) -> None:
    """Add the `customers` commands to the `servicecast` CLI."""
    app.add_typer(customers_app, name="customers")


@customers_app.command("add")
def customers_add(
    tenant: cli_args.Tenant,
    name: Annotated[str | None, typer.Option(help="Display name (default: the tenant id).")] = None,
    offers: Annotated[
        bool, typer.Option("--offers", help="The customer allows sales use of its data.")
    ] = False,
    product_improvement: Annotated[
        bool,
        typer.Option(
            "--product-improvement", help="The customer allows pooling its data into models for all."
        ),
    ] = False,
    reference: Reference = None,
) -> None:
    """Register a customer; TENANT is its id in MQTT topics."""
    engine = ready_engine(load_settings())
    try:
        registry.add_customer(
            engine=engine,
            tenant=tenant,
            name=name,
            offers=offers,
            product_improvement=product_improvement,
            reference=reference,
            by=audit.operator(),
        )
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    typer.echo(f"customer {tenant} added (data use: {_purposes(engine, tenant)})")


def _purposes(engine: Engine, tenant: str) -> str:
    purposes = registry.active_purposes(engine=engine, tenant=tenant)
    return ", ".join(p for p in registry.PURPOSES if p in purposes)


@customers_app.command("grant")
def customers_grant(tenant: cli_args.Tenant, purpose: Purpose, reference: Reference = None) -> None:
    """Record that customer TENANT allows PURPOSE (offers, product_improvement, service)."""
    engine = ready_engine(load_settings())
    try:
        registry.grant(
            engine=engine, tenant=tenant, purpose=purpose, by=audit.operator(), reference=reference
        )
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    typer.echo(f"customer {tenant} allows: {_purposes(engine, tenant)}")


@customers_app.command("revoke")
def customers_revoke(tenant: cli_args.Tenant, purpose: Purpose, reference: Reference = None) -> None:
    """Revoke PURPOSE of customer TENANT; revoking offers withdraws its open offers."""
    from api.offers import revoke_consent

    engine = ready_engine(load_settings())
    try:
        with session(for_writing(engine)) as sess:
            customer = registry.get_customer(sess, tenant)
            withdrawn = revoke_consent(sess, customer.id, purpose, audit.operator(), reference=reference)
    except errors.ServicecastError as exc:
        raise fail(exc, code=EXIT_ERROR) from None
    offers = display.count(withdrawn, "open offer")
    typer.echo(f"customer {tenant} allows: {_purposes(engine, tenant)}; {offers} withdrawn")


@customers_app.command("list")
def customers_list() -> None:
    """List customers with the data uses they allow."""
    from fleet import erasure  # with the archive's pyarrow: not for every command's start

    engine = ready_engine(load_settings())
    customers = registry.list_customers(engine=engine)
    with session(engine) as sess:
        consent = registry.purposes_by_customer(sess, [c.id for c in customers])
        erasing = erasure.to_finish(sess.connection(), customers)
    for customer in customers:
        auto = " (auto-registered)" if customer.auto_registered else ""
        granted = ", ".join(p for p in registry.PURPOSES if p in consent[customer.id])
        # Some of its archive files may be gone already: reads of those months fail until the rerun.
        command = erasing.get(customer.id)
        pending = f"\terasure unfinished: run `{command}` again" if command else ""
        typer.echo(f"{customer.tenant}\t{customer.name}{auto}\t{granted}{pending}")
