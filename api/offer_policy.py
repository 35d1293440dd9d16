"""Which offer to propose: the static first fit, or a contextual bandit that learns from the outcome ledger.

The bandit keeps one Bayesian linear model of revenue per arm (offer type × price level) over the
context features, and chooses by Thompson sampling: for a context, each arm's revenue is drawn from its
posterior and the best draw wins. With probability `exploration` it picks uniformly among the fitting
arms instead. The probability of the chosen arm (the propensity) is computed over that whole mixture
and logged with the context and the alternatives, so any policy can be evaluated off-line from the log.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from api import catalog

SEGMENTS = ("small", "mid", "key_account")
MACHINE_TYPES = ("centrifugal_pump", "air_compressor", "cnc_spindle")
DRAWS = 400  # Monte Carlo draws that estimate a Thompson choice's propensity


@dataclass(frozen=True, slots=True)
class Arm:
    """One action: an offer type at one of its price points."""

    item: str
    level: int
    price: float
    list_price: float

    @property
    def key(self) -> str:
        """The arm's name in the ledger, e.g. `spare_parts_kit@1`."""
        return f"{self.item}@{self.level}"


@dataclass(frozen=True, slots=True)
class Context:
    """What the policy may know when it proposes (never the customer's hidden behaviour)."""

    machine_type: str
    mode: str
    risk: float
    lead_hours: float | None
    segment: str | None
    tier: str
    month: int
    days_since_contact: float | None
    offers_before: int
    accepted_before: int

    def as_dict(self) -> dict:
        """The context as logged with the proposal."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Proposal:
    """The chosen arm, its probability, and every arm it was chosen from with theirs."""

    arm: Arm
    propensity: float
    policy: str
    alternatives: tuple[tuple[Arm, float], ...]

    def logged_alternatives(self) -> list[dict]:
        """The alternatives as stored with the offer."""
        return [
            {
                "arm": a.key,
                "item": a.item,
                "level": a.level,
                "price": a.price,
                "list_price": a.list_price,
                "probability": p,
            }
            for a, p in self.alternatives
        ]


def features(ctx: Context) -> np.ndarray:
    """The context as the model's input vector (bias first)."""
    lead_days = 60.0 if ctx.lead_hours is None else min(ctx.lead_hours / 24.0, 60.0)
    since = 90.0 if ctx.days_since_contact is None else min(ctx.days_since_contact, 90.0)
    angle = 2 * math.pi * (ctx.month - 1) / 12
    return np.array(
        [
            1.0,
            ctx.risk,
            lead_days / 30.0,
            1.0 if lead_days < 7 else 0.0,
            *(1.0 if ctx.segment == s else 0.0 for s in SEGMENTS),
            *(1.0 if ctx.machine_type == t else 0.0 for t in MACHINE_TYPES),
            1.0 if ctx.tier == "basic" else 0.0,
            since / 90.0,
            math.log1p(ctx.offers_before),
            (ctx.accepted_before + 0.5) / (ctx.offers_before + 1.0),
            1.0 if ctx.month % 3 == 0 else 0.0,
            math.sin(angle),
            math.cos(angle),
        ]
    )


FEATURES = len(features(Context("", "", 0.0, None, None, "basic", 1, None, 0, 0)))


def arms_for(items: Iterable[catalog.CatalogItem], segment: str | None) -> list[Arm]:
    """Every (item, price point) a fitting set of items offers this segment."""
    out = []
    for item in items:
        points = item.price_points(segment)
        out.extend(Arm(item.key, level, price, points[0]) for level, price in enumerate(points))
    return out


class OfferPolicy(Protocol):
    """What proposing needs of a policy: a choice with its probability, and learning from an outcome."""

    name: str

    def propose(self, ctx: Context, arms: Sequence[Arm], rng: np.random.Generator) -> Proposal: ...

    def learn(self, ctx: Context, arm: Arm, revenue: float) -> None: ...


def build(name: str, *, exploration: float, rows: Iterable[tuple[Context, Arm, float]] = ()) -> OfferPolicy:
    """The configured policy (`first_fit`, `thompson`), trained on ledger rows where it learns."""
    if name == "thompson":
        return ThompsonPolicy(exploration=exploration).fit(rows)
    if name == "first_fit":
        return FirstFit()
    raise ValueError(f"unknown offer policy {name!r}")


class FirstFit:
    """The static policy: the first fitting item at its list price, always."""

    name = "first_fit"

    def propose(self, ctx: Context, arms: Sequence[Arm], rng: np.random.Generator) -> Proposal:
        """The first arm at level 0, with probability 1."""
        first = next(a for a in arms if a.level == 0)
        return Proposal(first, 1.0, self.name, tuple((a, float(a is first)) for a in arms))

    def learn(self, ctx: Context, arm: Arm, revenue: float) -> None:
        """Learns nothing."""


def arm_features(ctx: Context, arm: Arm, items: Sequence[str]) -> np.ndarray:
    """The acceptance model's input for offering `arm` in `ctx`: the offer, its price, and the situation."""
    x = features(ctx)
    item = np.array([1.0 if arm.item == k else 0.0 for k in items])
    segment = x[4 : 4 + len(SEGMENTS)]
    ratio = arm.price / arm.list_price - 1.0
    return np.concatenate(
        [
            item,
            np.outer(item, segment).ravel(),
            item * (ctx.risk - 0.65),
            [ratio, math.log(arm.price / 1000.0)],
            ratio * segment,
            x[1:4],
            x[-6:],
        ]
    )


@dataclass
class ThompsonPolicy:
    """Thompson sampling on a Bayesian logistic model of acceptance; revenue is price times acceptance.

    One model over every arm (offer type, price, segment and situation as features), so an outcome of
    one offer teaches about the others. The posterior is a Laplace approximation refitted by Newton steps
    when new outcomes arrived. With probability `exploration` a fitting arm is chosen uniformly instead.
    The prior says what a salesperson would: an offer at list price is taken about one time in four
    (`prior_acceptance`), and a price above list is taken less often (`prior_price_effect`, the change
    in log-odds per 100 % of the list price); without it, the first draws favour the dearest arms.
    """

    exploration: float = 0.05
    prior_sd: float = 1.0
    prior_acceptance: float = 0.27
    prior_price_effect: float = -3.0
    items: tuple[str, ...] = ()
    name: str = "thompson"
    coef_: np.ndarray | None = None
    cov_chol_: np.ndarray | None = None
    learned_: int = 0
    _x: list[np.ndarray] = field(default_factory=list, repr=False)
    _y: list[float] = field(default_factory=list, repr=False)
    _stale: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        self.items = self.items or tuple(item.key for item in catalog.default().items)

    def learn(self, ctx: Context, arm: Arm, revenue: float) -> None:
        """Add one outcome (accepted when it earned revenue; declined and expired are not)."""
        self._x.append(arm_features(ctx, arm, self.items))
        self._y.append(1.0 if revenue > 0 else 0.0)
        self.learned_ += 1
        self._stale = True

    def fit(self, rows: Iterable[tuple[Context, Arm, float]]) -> ThompsonPolicy:
        """Learn from ledger rows (context, arm, revenue); returns self."""
        for ctx, arm, revenue in rows:
            self.learn(ctx, arm, revenue)
        self._refit()
        return self

    def _refit(self, steps: int = 4) -> None:
        dim = len(
            arm_features(
                Context("", "", 0.65, None, None, "basic", 1, None, 0, 0), Arm("", 0, 1.0, 1.0), self.items
            )
        )
        mean = np.zeros(dim)
        mean[: len(self.items)] = math.log(self.prior_acceptance / (1.0 - self.prior_acceptance))
        mean[len(self.items) * (len(SEGMENTS) + 2)] = self.prior_price_effect  # the price-ratio column
        coef = self.coef_ if self.coef_ is not None else mean.copy()
        prior = np.eye(dim) / self.prior_sd**2
        hessian = prior
        if self._x:
            x, y = np.vstack(self._x), np.array(self._y)
            for _ in range(steps):
                p = 1.0 / (1.0 + np.exp(-(x @ coef)))
                hessian = prior + (x * (p * (1 - p))[:, None]).T @ x
                coef = coef + np.linalg.solve(hessian, x.T @ (y - p) - prior @ (coef - mean))
        self.coef_ = coef
        self.cov_chol_ = np.linalg.cholesky(np.linalg.inv(hessian))
        self._stale = False

    def expected_revenue(self, ctx: Context, arms: Sequence[Arm]) -> np.ndarray:
        """Each arm's price times its acceptance probability under the posterior mean."""
        if self._stale:
            self._refit()
        phi = np.vstack([arm_features(ctx, arm, self.items) for arm in arms])
        return np.array([arm.price for arm in arms]) / (1.0 + np.exp(-(phi @ self.coef_)))

    def choice_probabilities(self, ctx: Context, arms: Sequence[Arm], rng: np.random.Generator) -> np.ndarray:
        """Each arm's probability of being chosen (exploration share plus its Thompson win share)."""
        if self._stale:
            self._refit()
        phi = np.vstack([arm_features(ctx, arm, self.items) for arm in arms])
        coefs = self.coef_ + rng.standard_normal((DRAWS, len(self.coef_))) @ self.cov_chol_.T
        prices = np.array([arm.price for arm in arms])
        revenue = prices / (1.0 + np.exp(-(coefs @ phi.T)))
        wins = np.bincount(revenue.argmax(axis=1), minlength=len(arms)) / DRAWS
        return self.exploration / len(arms) + (1.0 - self.exploration) * wins

    def propose(self, ctx: Context, arms: Sequence[Arm], rng: np.random.Generator) -> Proposal:
        """Draw an arm from `choice_probabilities`, so the logged propensity is the one actually used."""
        probs = self.choice_probabilities(ctx, arms, rng)
        pick = int(rng.choice(len(arms), p=probs / probs.sum()))
        alternatives = tuple(zip(arms, map(float, probs), strict=True))
        return Proposal(arms[pick], float(probs[pick]), self.name, alternatives)


@dataclass
class EpsilonGreedy:
    """A randomised logging policy: first fit, or with probability `epsilon` any fitting arm uniformly."""

    epsilon: float = 0.3
    name: str = "epsilon_greedy"

    def propose(self, ctx: Context, arms: Sequence[Arm], rng: np.random.Generator) -> Proposal:
        """First fit or a uniform arm; the propensity covers both ways of reaching the choice."""
        first = next(i for i, a in enumerate(arms) if a.level == 0)
        probs = np.full(len(arms), self.epsilon / len(arms))
        probs[first] += 1.0 - self.epsilon
        pick = int(rng.choice(len(arms), p=probs))
        return Proposal(
            arms[pick], float(probs[pick]), self.name, tuple(zip(arms, map(float, probs), strict=True))
        )

    def learn(self, ctx: Context, arm: Arm, revenue: float) -> None:
        """Learns nothing."""
