"""How far the learning policy's model falls short of the best static choice when data is no limit (issue 15).

The model is fitted on `--years` later years of the same market's customers, logged by a uniformly random
policy (every fitting arm equally likely), then frozen and run greedily (posterior mean, no exploration)
over the first year: with and without the per-account effects. Its expected revenue (the market's
probability × price) against the best static choice per offer context tells whether the learner's gap in
year one is a wrong model or too few outcomes. Development seeds only.
"""

from __future__ import annotations

import argparse
import json
import statistics
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np

from api import catalog
from api.offer_policy import Arm, Context, EpsilonGreedy, LearningPolicy, Proposal
from benchmarks.market import StaticTable, best_static_table
from servicecast.market_year import run_year
from simulators import market as sim

ACCOUNT_PRIORS = {
    "pooled only": (1e-3, 1e-3),
    "accounts (policy's prior)": None,
    "accounts sd 0.5, 0.8": (0.5, 0.8),
}


class Frozen:
    """A fitted learning policy that proposes as it was fitted and learns nothing more."""

    name = "frozen"

    def __init__(self, policy: LearningPolicy):
        self.policy = policy

    def propose(self, ctx: Context, arms: list[Arm], rng: np.random.Generator) -> Proposal:
        """The fitted policy's proposal."""
        return self.policy.propose(ctx, arms, rng)

    def learn(self, ctx: Context, arm: Arm, revenue: float) -> None:
        """Learns nothing: it was fitted before the year."""


def one_seed(seed: int, years: int) -> dict[str, float]:
    """Each frozen model's first-year expected revenue relative to the best static choice's."""
    cat = catalog.default()
    world = sim.build(seed)
    best = run_year(
        world, StaticTable(best_static_table(world, cat)), rng=np.random.default_rng(seed), cat=cat
    ).expected_revenue
    rows = []
    for year in range(1, years + 1):
        logged = run_year(
            sim.next_year(world, year),
            EpsilonGreedy(epsilon=1.0),
            rng=np.random.default_rng(seed + year),
            cat=cat,
        )
        rows += logged.ledger.rows()
    out = {"outcomes": len(rows)}
    for name, account_sd in ACCOUNT_PRIORS.items():
        options = {} if account_sd is None else {"account_sd": account_sd}
        model = LearningPolicy(exploration=0.0, optimism=0.0, **options).fit(rows)
        year = run_year(world, Frozen(model), rng=np.random.default_rng(seed), cat=cat)
        out[name] = year.expected_revenue / best - 1.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--first-seed", type=int, default=7000, help="development seeds only")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--years", type=int, default=6, help="years of uniformly random logs to fit on")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    with ProcessPoolExecutor(args.jobs) as pool:
        per_seed = list(pool.map(partial(one_seed, years=args.years), seeds))
    print(
        json.dumps(
            {
                "seeds": list(seeds),
                "years": args.years,
                "outcomes": round(statistics.fmean(s["outcomes"] for s in per_seed)),
                "over_best_static": {
                    name: round(statistics.fmean(s[name] for s in per_seed), 4) for name in ACCOUNT_PRIORS
                },
                "per_seed": [{k: round(v, 4) for k, v in s.items()} for s in per_seed],
            }
        )
    )


if __name__ == "__main__":
    main()
