"""`servicecast simulate market`: a simulated year of the sales loop with one offer policy."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import numpy as np
import typer

from api import catalog, offer_policy
from servicecast.market_year import run_year
from simulators import market

PolicyName = Literal["first_fit", "learning", "epsilon_greedy"]


def register(simulate_app: typer.Typer) -> None:
    """Add `market` to `servicecast simulate`."""
    simulate_app.command("market")(market_command)


def market_command(
    seed: Annotated[int, typer.Option(help="Market seed (customers, machines, faults).", min=0)] = 1,
    machines: Annotated[int, typer.Option(help="Machines in the market.", min=1, max=100_000)] = 500,
    customers: Annotated[int, typer.Option(help="Customers owning them.", min=1, max=10_000)] = 60,
    policy: Annotated[str, typer.Option(help="first_fit, learning or epsilon_greedy.")] = "learning",
    budget: Annotated[int, typer.Option(help="Real contacts per customer in any 7 days.", min=0)] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Run a year: prediction → alert → finding → offer → approval → answer → revenue, in process."""
    if policy not in PolicyName.__args__:
        raise typer.BadParameter(f"policy must be one of {', '.join(PolicyName.__args__)}")
    cat = catalog.default()
    chooser = (
        offer_policy.EpsilonGreedy()
        if policy == "epsilon_greedy"
        else offer_policy.build(
            policy,
            exploration=cat.policy.exploration,
            temperature=cat.policy.temperature,
            optimism=cat.policy.optimism,
        )
    )
    world = market.build(seed, machines=machines, customers=customers)
    result = run_year(world, chooser, rng=np.random.default_rng(seed), budget_per_week=budget, cat=cat)
    out = {
        "seed": seed,
        "policy": policy,
        "machines": machines,
        "customers": customers,
        "alerts": result.alerts,
        "findings": dict(result.findings),
        "offers_proposed": result.proposed,
        "offers_withdrawn_no_fault": result.withdrawn,
        "offers_sent": result.sent,
        "offers_unsent_at_year_end": (
            result.proposed - result.sent - result.withdrawn - result.refused_at_approval
        ),
        "offers_accepted": result.accepted,
        "offers_expired": result.expired,
        "blocked_by_contact_budget": result.blocked_by_budget,
        "refused_at_approval": result.refused_at_approval,
        "revenue": round(result.revenue, 2),
        "currency": cat.currency,
    }
    if as_json:
        typer.echo(json.dumps(out))
        return
    for key, value in out.items():
        typer.echo(f"{key:28} {value}")
