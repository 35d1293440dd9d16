"""The oracle decomposition's market views: a known factor as it is, every other at its segment's mean."""

from __future__ import annotations

from dataclasses import replace

from benchmarks import market_oracle
from simulators import market as sim


def _blank(customer: sim.Customer) -> sim.Customer:
    """The customer without its index, so that two of one segment compare by their factors only."""
    return replace(customer, index=0)


def test_an_oracle_that_knows_every_factor_sees_the_market_as_it_is() -> None:
    world = sim.build(11, machines=40, customers=6)
    view = market_oracle.segment_view(world, known=tuple(market_oracle.FACTORS))
    assert view.customers == world.customers


def test_an_unknown_factor_is_the_segments_mean_and_a_known_one_the_customers_own() -> None:
    world = sim.build(11, machines=40, customers=6)
    none = market_oracle.segment_view(world, known=())
    taste = market_oracle.segment_view(world, known=("taste",))
    for segment in {c.segment for c in world.customers}:
        peers = [c for c in none.customers if c.segment == segment]
        assert all(_blank(c) == _blank(peers[0]) for c in peers) and peers[0].rhythm == "flat"
    for seen, hidden, real in zip(taste.customers, none.customers, world.customers, strict=True):
        assert seen.taste == real.taste and seen.price_sensitivity == hidden.price_sensitivity


def test_small_accounts_show_no_factor() -> None:
    world = sim.build(11, machines=40, customers=6)
    view = market_oracle.segment_view(world, known=("taste",), min_machines=10_000)
    assert view.customers == market_oracle.segment_view(world, known=()).customers
