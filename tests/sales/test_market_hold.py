"""Holding an offer in the simulated year: no contact is used, and the hold is logged with its propensity."""

from __future__ import annotations

import numpy as np

from api.offer_policy import HOLD, FirstFit, LearningPolicy, Proposal
from servicecast.market_year import run_year
from simulators import market as sim


class HoldEveryOther(FirstFit):
    """First fit, but every other decision is a hold, chosen with probability 0.5."""

    name = "hold_every_other"

    def __init__(self) -> None:
        self.decisions = 0

    def propose(self, ctx, arms, rng) -> Proposal:
        self.decisions += 1
        first = super().propose(ctx, arms, rng)
        if self.decisions % 2:
            return first
        return Proposal(HOLD, 0.5, self.name, ((first.arm, 0.5), (HOLD, 0.5)))


def test_held_offers_use_no_contact_and_are_logged_with_their_propensity() -> None:
    world = sim.build(5, machines=80, customers=10)
    policy = HoldEveryOther()
    held = run_year(world, policy, rng=np.random.default_rng(5))
    first_fit = run_year(world, FirstFit(), rng=np.random.default_rng(5))
    holds = [e for e in held.ledger.entries if e.arm == HOLD]
    assert held.held == len(holds) == policy.decisions // 2 > 0
    assert all(e.propensity == 0.5 and e.revenue == 0.0 and e.alternatives[-1] == HOLD for e in holds)
    assert held.proposed == policy.decisions - held.held
    assert held.sent < first_fit.sent and held.blocked_by_budget <= first_fit.blocked_by_budget
    assert len(held.situations) == len(held.ledger.entries)
    learner = LearningPolicy().fit(held.ledger.rows())
    assert learner.learned_ == len(held.ledger.entries) - len(holds)
