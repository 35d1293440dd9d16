"""Which hidden customer factor an offer oracle's gain over the best static choice comes from (issue 15).

Each oracle chooses every offer by the market's own acceptance probability (price × probability, greedy),
but sees one hidden factor of every customer as it is and the others at the mean of the customer's segment
(over this market's customers): where the gain lies tells what a learner would have to find out per
account. `--min-machines` gives the factor only to accounts with at least that many machines (a learner
sees about one decided offer per machine a year). Development seeds only; prints expected revenue (the
market's probability × price) against the best static choice per offer context.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from dataclasses import replace
from datetime import date

import numpy as np

from api import catalog
from api.offer_policy import Arm, Context, Proposal
from benchmarks.market import StaticTable, best_static_table
from servicecast.market_year import accept_probability, run_year
from simulators import market as sim

# The hidden factors, as fields of `sim.Customer`; the budget rhythm is its kind and its amplitude.
FACTORS = {
    "base": ("base",),
    "taste": ("taste",),
    "price_sensitivity": ("price_sensitivity",),
    "size_aversion": ("size_aversion",),
    "urgency": ("urgency",),
    "fatigue": ("fatigue",),
    "rhythm": ("rhythm", "rhythm_amplitude"),
}
HIDDEN = {name for names in FACTORS.values() for name in names}


def segment_view(world: sim.Market, *, known: tuple[str, ...], min_machines: int = 0) -> sim.Market:
    """The market as an oracle sees it: the `known` factors as they are, the rest at the segment's mean.

    Accounts with fewer than `min_machines` machines show no factor as it is.
    """
    machines = Counter(m.customer for m in world.machines)
    by_segment: dict[str, list[sim.Customer]] = {}
    for customer in world.customers:
        by_segment.setdefault(customer.segment, []).append(customer)
    seen = {name for factor in known for name in FACTORS[factor]}
    customers = []
    for customer in world.customers:
        hidden = HIDDEN - seen if machines[customer.index] >= min_machines else HIDDEN
        customers.append(replace(customer, **_means(by_segment[customer.segment], hidden)))
    return sim.Market(seed=world.seed, customers=customers, machines=world.machines, start=world.start)


def _means(peers: list[sim.Customer], names: set[str]) -> dict:
    """The segment's mean of each named factor (a flat budget for the rhythm)."""
    out: dict = {}
    for name in names:
        if name == "taste":
            out[name] = {item: statistics.fmean(c.taste[item] for c in peers) for item in peers[0].taste}
        elif name == "rhythm":
            out[name] = "flat"
        else:
            out[name] = statistics.fmean(getattr(c, name) for c in peers)
    return out


class Oracle:
    """Greedy on price × the probability of a market view; learns nothing."""

    name = "oracle"

    def __init__(self, view: sim.Market):
        self.view = view
        self.machine_of = {}  # account -> one of its machines (the probability depends on the owner only)
        for machine in view.machines:
            self.machine_of.setdefault(machine.customer, machine.index)

    def propose(self, ctx: Context, arms: list[Arm], rng: np.random.Generator) -> Proposal:
        """The arm of highest price × probability in the view, at mid-month of the context's month."""
        day = (date(self.view.start.year, ctx.month, 15) - self.view.start).days
        opp = sim.Opportunity(
            day, self.machine_of[ctx.account], ctx.mode, ctx.risk, ctx.lead_hours, True, "", day, 0, True, 0.0
        )
        values = [
            arm.price
            * accept_probability(
                world=self.view, opp=opp, arm=arm, contacts_30d=ctx.contacts_30d, found_no_fault=False
            )
            for arm in arms
        ]
        arm = arms[int(np.argmax(values))]
        return Proposal(arm, 1.0, self.name, tuple((a, float(a is arm)) for a in arms))

    def learn(self, ctx: Context, arm: Arm, revenue: float) -> None:
        """Learns nothing."""


def run(seeds: tuple[int, ...], *, min_machines: int = 0) -> dict:
    """Each oracle's expected revenue against the best static choice's, mean over seeds."""
    cat = catalog.default()
    oracles = {"none": (), **{f: (f,) for f in FACTORS}, "all": tuple(FACTORS)}
    gains: dict[str, list[float]] = {name: [] for name in oracles}
    for seed in seeds:
        world = sim.build(seed)
        best = run_year(
            world, StaticTable(best_static_table(world, cat)), rng=np.random.default_rng(seed), cat=cat
        )
        for name, known in oracles.items():
            view = segment_view(world, known=known, min_machines=min_machines)
            year = run_year(world, Oracle(view), rng=np.random.default_rng(seed), cat=cat)
            gains[name].append(year.expected_revenue / best.expected_revenue - 1.0)
    return {
        "seeds": list(seeds),
        "min_machines": min_machines,
        "over_best_static": {name: round(statistics.fmean(g), 4) for name, g in gains.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--first-seed", type=int, default=4000, help="development seeds only")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--min-machines", type=int, default=0)
    args = parser.parse_args()
    seeds = tuple(range(args.first_seed, args.first_seed + args.seeds))
    print(json.dumps(run(seeds, min_machines=args.min_machines)))


if __name__ == "__main__":
    main()
