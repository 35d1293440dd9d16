"""The ceiling check's frozen model: fitted on later years' logs, it proposes and never learns in the year."""

from __future__ import annotations

import numpy as np

from api import catalog
from api.offer_policy import EpsilonGreedy, LearningPolicy
from benchmarks import market_ceiling
from servicecast.market_year import run_year
from simulators import market as sim


def test_the_frozen_model_learns_nothing_from_the_year_it_is_run_over() -> None:
    world = sim.build(21, machines=60, customers=8)
    cat = catalog.default()
    logged = run_year(sim.next_year(world), EpsilonGreedy(epsilon=1.0), rng=np.random.default_rng(1), cat=cat)
    rows = logged.ledger.rows()
    model = LearningPolicy(exploration=0.0, optimism=0.0).fit(rows)
    coef = model.coef_.copy()
    year = run_year(world, market_ceiling.Frozen(model), rng=np.random.default_rng(2), cat=cat)
    assert year.sent > 0 and model.learned_ == len(rows)
    np.testing.assert_array_equal(model.coef_, coef)
    assert all(entry.propensity == 1.0 for entry in year.ledger.entries)  # greedy: no exploration share
