"""The `servicecast route` command: run the outbox router until SIGTERM/SIGINT, or one pass with --once."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Annotated

import typer
from sqlalchemy import Engine

from api import delivery, routing
from fleet import migrate
from fleet.db import engine_from_settings
from fleet.settings import EXIT_BAD_SETTING, Settings, load_or_exit

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
    settings = load_or_exit()
    if problem := delivery.config_problem(settings):
        print(f"servicecast: {problem}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_SETTING)
    engine = engine_from_settings(settings)
    try:
        migrate.ensure_schema(engine)
        if once:
            typer.echo(_drain(engine, settings).summary())
            return
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            routing.run_router(engine=engine, settings=settings, stop=stop, poll_s=poll)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        engine.dispose()


def _drain(engine: Engine, settings: Settings) -> routing.RouteReport:
    """Passes of `deliver_due` until one finds less than a full batch; the summed report."""
    total = routing.RouteReport()
    while True:
        report = routing.deliver_due(engine=engine, settings=settings, limit=BATCH)
        for name in ("claimed", "delivered", "retried", "dead", "cancelled"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        if report.claimed < BATCH:
            return total
