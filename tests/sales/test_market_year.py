"""The simulated year: its contact budget at both gates, the CLI and the market benchmark at a small size."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
from typer.testing import CliRunner

from api import offer_policy
from benchmarks import market as bench
from servicecast import market_year
from servicecast.cli import app
from simulators import market


def test_simulate_market_runs_a_year_and_counts_every_stage() -> None:
    result = CliRunner().invoke(
        app, ["simulate", "market", "--machines", "80", "--customers", "10", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["alerts"] > 0 and sum(out["findings"].values()) > 0
    assert (
        out["offers_proposed"]
        == out["offers_sent"]
        + out["offers_withdrawn_no_fault"]
        + out["refused_at_approval"]
        + out["offers_unsent_at_year_end"]
    )
    assert out["offers_accepted"] <= out["offers_sent"] and out["revenue"] >= 0


def test_the_benchmark_prints_the_promised_keys(tmp_path) -> None:
    png = tmp_path / "market.png"
    out = bench.run((1, 2), machines=60, customers=8, png=png)
    for key in ("uplift", "uplift_ci95", "seeds", "learning_revenue", "static_revenue", "ope_estimate"):
        assert key in out
    assert out["seeds"] == [1, 2] and png.stat().st_size > 1000
    assert out["uplift_ci95"][0] <= out["uplift"] <= out["uplift_ci95"][1]


def test_the_benchmark_gives_the_same_figures_with_seeds_run_in_processes() -> None:
    one = bench.run((3, 4), machines=60, customers=8, png=None)
    two = bench.run((3, 4), machines=60, customers=8, png=None, jobs=2)
    assert two == one and two["seeds"] == [3, 4]


def _opp(day: int, machine: int, *, risk: float, finding_day: int) -> market.Opportunity:
    """An opportunity on a pump: risk 0.95 fits every catalog item, risk 0.1 none (a visit, no offer)."""
    return market.Opportunity(
        day=day,
        machine=machine,
        mode="bearing_wear",
        risk=risk,
        lead_hours=500.0,
        real_fault=True,
        finding="confirmed_fault",
        finding_day=finding_day,
        answer_delay=3,
        answers=True,
        draw=0.5,
    )


def _over_budget_sends(result: market_year.YearResult, budget: int) -> list[tuple[int, int, int]]:
    """Every sent offer that left when its customer already had `budget` contacts in the 7 days up to it."""
    over = []
    for i, (day, customer, offer) in enumerate(result.contact_log):
        if offer:
            week = [c for d, c, _ in result.contact_log[: i + 1] if c == customer and d > day - 7]
            if len(week) > budget:
                over.append((day, customer, len(week)))
    return over


def test_the_budget_is_checked_again_when_the_offer_is_sent_as_at_the_products_approval() -> None:
    world = market.build(1, machines=6, customers=2)
    customer = world.customers[0]
    world.machines = [market.MachineSpec(m, m // 4, "centrifugal_pump", "basic") for m in range(6)]
    world.customers = [customer, replace(customer, index=1)]
    world.opportunities = [
        # Customer 0: visits on days 1 and 2, then three alerts on day 3, each proposed (2 contacts < 3);
        # on day 4 the first offer leaves (3 contacts), the other two would make 4 and 5.
        _opp(1, 0, risk=0.1, finding_day=1),
        _opp(2, 0, risk=0.1, finding_day=2),
        *(_opp(3, m, risk=0.95, finding_day=40) for m in (1, 2, 3)),
        # Customer 1: visits on days 10 and 11, an alert on day 12 (proposed), a visit on day 13 before
        # the offer leaves that day.
        _opp(10, 4, risk=0.1, finding_day=10),
        _opp(11, 4, risk=0.1, finding_day=11),
        _opp(12, 5, risk=0.95, finding_day=40),
        _opp(13, 4, risk=0.1, finding_day=13),
    ]
    result = market_year.run_year(world, offer_policy.FirstFit(), rng=np.random.default_rng(0), days=30)
    assert result.proposed == 4 and result.blocked_by_budget == 0
    assert _over_budget_sends(result, 3) == []
    assert result.sent == 1 and result.refused_at_approval == 3
    assert len(result.ledger.entries) == 1  # refused offers are not logged as sent with an outcome
    assert sum(1 for _, _, offer in result.contact_log if offer) == result.sent


def test_no_offer_of_a_whole_year_leaves_into_a_full_week() -> None:
    world = market.build(5, machines=120, customers=6)
    result = market_year.run_year(world, offer_policy.FirstFit(), rng=np.random.default_rng(5))
    assert result.refused_at_approval > 0 and result.sent > 0
    assert _over_budget_sends(result, 3) == []
    visits = sum(1 for o in world.opportunities if o.finding_day < 365)
    assert len(result.contact_log) == visits + result.sent
    # Hence no 7 days hold more than 3 contacts up to their last offer, for every customer.
    for customer in range(6):
        log = [(d, offer) for d, c, offer in result.contact_log if c == customer]
        for i, (day, offer) in enumerate(log):
            if offer:
                assert sum(1 for d, _ in log[: i + 1] if d > day - 7) <= 3
