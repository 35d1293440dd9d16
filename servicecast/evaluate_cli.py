"""`servicecast evaluate`: backtest the models on a seeded simulated fleet (simulators feed models here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

MAX_ROWS = 50_000_000  # the whole simulated panel is built in memory for the backtest


def register(app: typer.Typer) -> None:
    """Add the top-level `evaluate` command to the `servicecast` CLI."""
    app.command("evaluate")(evaluate)


def evaluate(
    machines: Annotated[int, typer.Option(help="simulated fleet size")] = 200,
    days: Annotated[float, typer.Option(help="simulated days")] = 150.0,
    train_days: Annotated[float, typer.Option(help="days of the training period")] = 90.0,
    seed: Annotated[int, typer.Option(help="same seed, same fleet, values and failures")] = 7,
    step_seconds: Annotated[int, typer.Option(help="seconds between a machine's readings")] = 3600,
    out: Annotated[Path, typer.Option(help="report folder", file_okay=False)] = Path("var/reports/models"),
) -> None:
    """Backtest on a seeded simulated fleet (train early, test later) and write report.md + backtest.json."""
    # The simulator first: it reads the shipped types file on import, so a broken one (or a bad option) stops
    # the command before the models' imports.
    from simulators.config import FleetConfig
    from simulators.engine import simulate

    if not 0 < train_days < days:
        raise typer.BadParameter(f"must be above 0 and below --days ({days:g})", param_hint="--train-days")
    try:
        config = FleetConfig(machines=machines, days=days, seed=seed, step_seconds=step_seconds)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if machines * config.steps > MAX_ROWS:
        raise typer.BadParameter(
            f"{machines:,} machines × {config.steps:,} steps exceed the {MAX_ROWS:,} rows a backtest holds "
            "in memory: fewer machines, fewer days or a longer --step-seconds",
            param_hint="--machines",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(f"cannot make the folder: {exc.strerror}", param_hint="--out") from None
    from models.evaluate import backtest, summary, write_report

    run = simulate(config)
    split = pd.Timestamp(config.start) + pd.Timedelta(days=train_days)
    result = backtest(run.telemetry(max_rows=MAX_ROWS), run.failures, run.maintenance, split=split)
    path = write_report(result, out)
    typer.echo(f"{summary(result)}; report: {path}")
