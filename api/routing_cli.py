"""The `servicecast route` command: run the outbox router until SIGTERM/SIGINT, or one pass with --once."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import Engine

from api import delivery, routing
from fleet import bootstrap
from fleet.settings import Settings

BATCH = 100


def register(app: typer.Typer) -> None:
    """Add the top-level `route` command to the `servicecast` CLI."""
    app.command("route")(route)


def route(
    once: Annotated[
        bool, typer.Option("--once", help="Deliver what is due now, print a summary and exit.")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between polls when nothing is due.", min=0.05)] = 1.0,
) -> None:
    """Deliver approved offers from the outbox to the CRM webhook and by e-mail (at least once)."""
    settings = bootstrap.load_settings()
    if problem := delivery.config_problem(settings):
        raise bootstrap.fail(problem)
    with bootstrap.engine_for(settings, process="route") as engine:
        if once:
            typer.echo(_drain(engine, settings).summary())
            return
        code = bootstrap.run_until_stopped(
            lambda stop: routing.run_router(engine=engine, settings=settings, stop=stop, poll_s=poll),
            name="servicecast-route",
        )
    raise typer.Exit(code)


def _drain(engine: Engine, settings: Settings) -> routing.RouteReport:
    """Passes of `deliver_due` until one finds less than a full batch; the summed report."""
    total, holds = routing.RouteReport(), routing.Holds()
    while True:
        report = routing.deliver_due(engine=engine, settings=settings, limit=BATCH, holds=holds)
        for name in ("claimed", "delivered", "retried", "dead", "cancelled", "held"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        if report.claimed < BATCH:
            return total
