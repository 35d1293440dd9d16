"""The `servicecast policy` command: turn new predictions into alerts and offers until SIGTERM, or --once."""

from __future__ import annotations

from typing import Annotated

import typer

from api import catalog, policy
from fleet import bootstrap


def register(app: typer.Typer) -> None:
    """Add the top-level `policy` command to the `servicecast` CLI."""
    app.command("policy")(run)


def run(
    once: Annotated[
        bool, typer.Option("--once", help="Process the predictions waiting now, print a summary and exit.")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between passes.", min=0.05)] = 2.0,
) -> None:
    """Open and update alerts, propose offers and escalate overdue alerts from new predictions."""
    settings = bootstrap.load_settings()
    catalog.default()  # a broken catalog stops the start with every problem and its line (exit 2)
    with bootstrap.engine_for(settings, process="policy") as engine:
        if once:
            typer.echo(policy.run_once(engine=engine, settings=settings).summary())
            return
        code = bootstrap.run_until_stopped(
            lambda stop: policy.run_forever(engine=engine, settings=settings, stop=stop, every_s=poll),
            name="servicecast-policy",
        )
    raise typer.Exit(code)
