"""The learning offer policy: propensities that add up, and a choice that moves to the better offer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from api.offer_policy import HOLD, Arm, Context, EpsilonGreedy, FirstFit, LearningPolicy

CTX = Context("centrifugal_pump", "bearing_wear", 0.8, 200.0, "mid", "basic", 3, 20.0, 2, 1)
# Two offers at the same price; the simulated customer takes the kit 60 % of the time, the visit 20 %.
KIT, VISIT = Arm("spare_parts_kit", 0, 1000.0, 1000.0), Arm("inspection_visit", 0, 1000.0, 1000.0)
TRUTH = {KIT.key: 0.6, VISIT.key: 0.2}
N_OUTCOMES = 60  # the stated bound: within 60 outcomes the policy picks the better offer 90 % of the time


def test_every_policy_logs_a_propensity_among_alternatives_that_sum_to_one() -> None:
    rng = np.random.default_rng(0)
    policies = (
        FirstFit(),
        EpsilonGreedy(epsilon=0.3),
        LearningPolicy(exploration=0.1),
        LearningPolicy(exploration=0.1, temperature=1.0),
    )
    for policy in policies:
        proposal = policy.propose(CTX, [VISIT, KIT], rng)
        probs = dict((a.key, p) for a, p in proposal.alternatives)
        assert abs(sum(probs.values()) - 1.0) < 1e-9
        assert proposal.propensity == probs[proposal.arm.key] > 0
        assert {row["arm"] for row in proposal.logged_alternatives()} == {KIT.key, VISIT.key}


def test_exploration_share_bounds_each_arms_probability_from_below() -> None:
    policy = LearningPolicy(exploration=0.1)
    for _ in range(50):
        policy.learn(CTX, KIT, 1000.0)
        policy.learn(CTX, VISIT, 0.0)
    probs = policy.choice_probabilities(CTX, [VISIT, KIT], np.random.default_rng(1))
    assert probs.min() >= 0.1 / 2 - 1e-9 and probs[1] > 0.9


def test_the_choice_shifts_to_the_better_offer_within_n_outcomes() -> None:
    for seed in range(5):
        rng, market = np.random.default_rng(seed), np.random.default_rng(100 + seed)
        policy = LearningPolicy(exploration=0.05)
        first_share = policy.choice_probabilities(CTX, [VISIT, KIT], rng)[1]
        for _ in range(N_OUTCOMES):
            arm = policy.propose(CTX, [VISIT, KIT], rng).arm
            policy.learn(CTX, arm, arm.price if market.random() < TRUTH[arm.key] else 0.0)
        share = policy.choice_probabilities(CTX, [VISIT, KIT], rng)[1]
        assert first_share < 0.75 and share >= 0.9, (seed, first_share, share)


def test_an_offer_worth_less_than_a_kept_contact_is_held_and_the_hold_logged_with_its_propensity() -> None:
    ctx = dataclasses.replace(CTX, account=7, contacts_30d=2)
    cheap = Arm("inspection_visit", 0, 100.0, 100.0)  # the account never took it; it always took the kit
    rows = [(ctx, KIT, 1000.0)] * 20 + [(ctx, cheap, 0.0)] * 20
    holding = LearningPolicy(exploration=0.1, hold_below=0.5).fit(rows)
    proposal = holding.propose(ctx, [cheap], np.random.default_rng(0))
    probs = {a.key: p for a, p in proposal.alternatives}
    assert proposal.arm == HOLD and proposal.propensity == probs[HOLD.key] == pytest.approx(0.9)
    assert probs[cheap.key] == pytest.approx(0.1)  # the exploration share stays with the offers
    assert holding.propose(ctx, [cheap, KIT], np.random.default_rng(0)).alternatives[-1] == (HOLD, 0.0)
    plain = LearningPolicy(exploration=0.1).fit(rows).propose(ctx, [cheap], np.random.default_rng(0))
    assert plain.arm == cheap and [a for a, _ in plain.alternatives] == [cheap]


def test_a_hold_is_not_learned_as_an_answer() -> None:
    policy = LearningPolicy(exploration=0.1, hold_below=0.5)
    policy.learn(CTX, HOLD, 0.0)
    assert policy.learned_ == 0 and policy.contact_value(CTX) == 0.0
    policy.learn(CTX, KIT, 1000.0)
    assert policy.learned_ == 1 and policy.contact_value(CTX) == 1000.0
