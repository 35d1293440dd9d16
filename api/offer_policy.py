"""Which offer to propose: the static first fit, or a contextual bandit that learns from the outcome ledger.

The learning policy keeps one Bayesian logistic model of acceptance over every arm (offer type × price
point) and the context, with a small model per account beside it, and proposes the arm of highest price ×
acceptance at an upper confidence bound of the posterior (`optimism`; or, at a `temperature` above 0,
under draws from it: 1 is Thompson sampling). With probability `exploration` it picks uniformly among
the fitting arms instead. The probability of the chosen arm (the propensity) is computed over that whole
mixture and logged with the context and the alternatives, so any policy can be evaluated off-line from
the log.

Holding ("no offer") is an action too: with `hold_below` above 0 the policy keeps the contact when the
chosen offer's expected revenue is below that share of the contact's cost in later offers (`hold_cost`:
what a decided offer to the account has earned, the account's mean pulled towards everyone's, times its
contacts in the last 30 days), since a sent offer tires the customer for the offers after it. A hold
is logged with its probability like any other choice and is never learned from as an answer.
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
DRAWS = 400  # Monte Carlo draws that estimate a sampled choice's propensity (temperature > 0)
ACCOUNT_WEIGHT = 5.0  # outcomes of everyone's mean an account's own contact value is pulled towards


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


HOLD = Arm("hold", 0, 0.0, 0.0)  # the "no offer" action: the contact is kept for a later prediction


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
    account: int | None = None  # the customer (account) the offer goes to
    contacts_30d: int = 0  # real contacts with the account in the last 30 days (sent offers, visits)

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


def build(
    name: str,
    *,
    exploration: float,
    temperature: float = 0.0,
    optimism: float = 0.5,
    hold_below: float = 0.0,
    rows: Iterable[tuple[Context, Arm, float]] = (),
    items: Sequence[str] = (),
) -> OfferPolicy:
    """The configured policy (`first_fit`, `learning`), trained on ledger rows where it learns.

    items: the catalog's item keys (default: the shipped file's); items only the ledger names are added.
    """
    if name == "learning":
        rows = list(rows)
        keys = list(items) or [item.key for item in catalog.default().items]
        keys += [arm.item for _, arm, _ in rows if arm != HOLD]
        policy = LearningPolicy(
            exploration=exploration,
            temperature=temperature,
            optimism=optimism,
            hold_below=hold_below,
            items=tuple(dict.fromkeys(keys)),
        )
        return policy.fit(rows)
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


def situation(ctx: Context) -> list[float]:
    """The context's columns that bear on every arm alike: risk, lead, who, contacts, season."""
    lead_days = 60.0 if ctx.lead_hours is None else min(ctx.lead_hours / 24.0, 60.0)
    since = 90.0 if ctx.days_since_contact is None else min(ctx.days_since_contact, 90.0)
    angle = 2 * math.pi * (ctx.month - 1) / 12
    return [
        ctx.risk - 0.65,
        1.0 if lead_days < 7 else 0.0,
        lead_days / 30.0,
        *(1.0 if ctx.segment == s else 0.0 for s in SEGMENTS),
        *(1.0 if ctx.machine_type == t else 0.0 for t in MACHINE_TYPES),
        1.0 if ctx.tier == "basic" else 0.0,
        min(ctx.contacts_30d, 15) / 5.0,
        since / 90.0,
        1.0 if ctx.month % 3 == 0 else 0.0,
        math.sin(angle),
        math.cos(angle),
    ]


SITUATION = len(situation(Context("", "", 0.0, None, None, "basic", 1, None, 0, 0)))


def arm_features(ctx: Context, arm: Arm, items: Sequence[str]) -> np.ndarray:
    """The acceptance model's input for offering `arm` in `ctx`, in the order of the prior's groups.

    The offer (item, and item by segment), its price (relative to list, by segment, and its size) and
    the situation (risk, lead, segment, machine type, tier, contacts in 30 days, days since the last
    contact, season).
    """
    item = np.array([1.0 if arm.item == k else 0.0 for k in items])
    segment = np.array([1.0 if ctx.segment == s else 0.0 for s in SEGMENTS])
    ratio = arm.price / arm.list_price - 1.0
    # Ledgers may hold offers approved free (allowed until approvals were checked): no log of 0.
    size = math.log(max(arm.price, 1.0) / 1000.0)
    return np.concatenate(
        [item, np.outer(item, segment).ravel(), [ratio], ratio * segment, [size]] + [situation(ctx)]
    )


@dataclass
class LearningPolicy:
    """A Bayesian logistic model of acceptance; revenue is price times acceptance; bounded exploration.

    One model over every arm, so an outcome of one offer teaches about the others: offer type by segment,
    price (relative to list and absolute) and the situation. Beside it, each account (customer) has its
    own small model: how much more or less than its segment it buys, overall and per offer type, learned
    only from that account's outcomes and pulled towards zero by its prior (`account_sd`), so an account
    with few outcomes follows the pooled model. A decline or an expiry is a negative outcome. Both
    posteriors are Laplace approximations, refitted by alternating Newton steps (pooled model given the
    accounts' effects, then every account given the pooled model) when new outcomes arrived.

    The prior starts where a salesperson would: every offer at list price is taken about one time in
    four (`prior_acceptance`), so price times acceptance ranks the dearest fitting item first, as first
    fit does; a price above list is taken less often (`prior_price_effect`, log-odds per 100 % of list).

    Choice: each arm is scored at its price times its acceptance at the posterior mean log-odds plus
    `optimism` posterior standard deviations (an upper confidence bound: an offer the ledger knows
    little about gets tried), and the best wins; at a `temperature` above 0 the log-odds are drawn from
    the posterior instead, its spread scaled by `temperature` (1 is Thompson sampling). With
    probability `exploration` a fitting arm is chosen uniformly instead. The logged propensity covers
    both ways. With `hold_below` above 0, `HOLD` is among the choices (see the module's docstring); the
    exploration share goes to the offers only, as holding teaches nothing about the customer.
    """

    exploration: float = 0.05
    temperature: float = 0.0
    optimism: float = 0.5
    hold_below: float = 0.0
    prior_acceptance: float = 0.27
    prior_price_effect: float = -5.0
    prior_sd: tuple[float, float, float, float] = (0.5, 0.3, 1.0, 0.5)  # log-odds: item, item×segment,
    # price, situation
    account_sd: tuple[float, float] = (0.3, 0.5)  # log-odds: the account overall, the account × item
    items: tuple[str, ...] = ()
    name: str = "learning"
    coef_: np.ndarray | None = None
    cov_: np.ndarray | None = None
    account_coef_: dict[int, np.ndarray] = field(default_factory=dict)
    account_cov_: dict[int, np.ndarray] = field(default_factory=dict)
    learned_: int = 0
    _x: list[np.ndarray] = field(default_factory=list, repr=False)
    _z: list[np.ndarray] = field(default_factory=list, repr=False)
    _y: list[float] = field(default_factory=list, repr=False)
    _rows_of: dict[int, list[int]] = field(default_factory=dict, repr=False)  # account -> its rows
    _stale: bool = field(default=True, repr=False)
    # Revenue and decided offers per account, and of everyone under "all": account -> [sum, n]
    _earned: dict[int | str | None, list[float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.exploration <= 0.5:
            raise ValueError("exploration must be between 0 and 0.5")
        self.items = self.items or tuple(item.key for item in catalog.default().items)

    def learn(self, ctx: Context, arm: Arm, revenue: float) -> None:
        """Add one outcome (accepted when it earned revenue; declined and expired are not); a hold is none."""
        if arm == HOLD:
            return
        for key in (ctx.account, "all"):
            earned = self._earned.setdefault(key, [0.0, 0])
            earned[0], earned[1] = earned[0] + revenue, earned[1] + 1
        if ctx.account is not None:
            self._rows_of.setdefault(ctx.account, []).append(len(self._y))
        self._x.append(arm_features(ctx, arm, self.items))
        self._z.append(self._account_features(arm))
        self._y.append(1.0 if revenue > 0 else 0.0)
        self.learned_ += 1
        self._stale = True

    def fit(self, rows: Iterable[tuple[Context, Arm, float]]) -> LearningPolicy:
        """Learn from ledger rows (context, arm, revenue); returns self."""
        for ctx, arm, revenue in rows:
            self.learn(ctx, arm, revenue)
        self._refit()
        return self

    def _account_features(self, arm: Arm) -> np.ndarray:
        """An account's columns for offering `arm`: its overall effect and its effect for the item."""
        return np.array([1.0, *(1.0 if arm.item == k else 0.0 for k in self.items)])

    def _prior(self) -> tuple[np.ndarray, np.ndarray]:
        """The pooled model's prior mean and precision of every column."""
        n_items, n_seg = len(self.items), len(SEGMENTS)
        sd_item, sd_item_seg, sd_price, sd_situation = self.prior_sd
        sd = [sd_item] * n_items + [sd_item_seg] * n_items * n_seg + [sd_price] * (n_seg + 2)
        sd += [sd_situation] * SITUATION
        mean = np.zeros(len(sd))
        mean[:n_items] = math.log(self.prior_acceptance / (1.0 - self.prior_acceptance))
        mean[n_items * (n_seg + 1)] = self.prior_price_effect  # the price-ratio column
        return mean, 1.0 / np.square(sd)

    def _account_precision(self) -> np.ndarray:
        """The prior precision of an account's effects (mean zero: the account buys as its segment)."""
        return 1.0 / np.square([self.account_sd[0]] + [self.account_sd[1]] * len(self.items))

    def _refit(self, steps: int = 3) -> None:
        mean, precision = self._prior()
        coef = self.coef_ if self.coef_ is not None else mean.copy()  # warm start from the last fit
        hessian = np.diag(precision)
        if self._x:
            x, z, y = np.vstack(self._x), np.vstack(self._z), np.array(self._y)
            offset = np.zeros(len(y))  # each row's account effect
            for account, rows in self._rows_of.items():
                if account in self.account_coef_:
                    offset[rows] = z[rows] @ self.account_coef_[account]
            for _ in range(steps):
                p = _sigmoid(x @ coef + offset)
                hessian = np.diag(precision) + (x * (p * (1 - p))[:, None]).T @ x
                coef = coef + np.linalg.solve(hessian, x.T @ (y - p) - precision * (coef - mean))
                offset = self._refit_accounts(x @ coef, z, y)
        self.coef_ = coef
        self.cov_ = np.linalg.inv(hessian)
        self._stale = False

    def _refit_accounts(self, pooled: np.ndarray, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """One Newton step of every account's effects given the pooled log-odds; each row's effect."""
        precision = self._account_precision()
        offset = np.zeros(len(y))
        for account, rows in self._rows_of.items():
            zr = z[rows]
            b = self.account_coef_.get(account, np.zeros(len(precision)))
            p = _sigmoid(pooled[rows] + zr @ b)
            hessian = np.diag(precision) + (zr * (p * (1 - p))[:, None]).T @ zr
            b = b + np.linalg.solve(hessian, zr.T @ (y[rows] - p) - precision * b)
            self.account_coef_[account] = b
            self.account_cov_[account] = np.linalg.inv(hessian)
            offset[rows] = zr @ b
        return offset

    def _posterior(self, ctx: Context, arms: Sequence[Arm]) -> tuple[np.ndarray, np.ndarray]:
        """Each arm's posterior mean log-odds of acceptance and their covariance."""
        if self._stale:
            self._refit()
        phi = np.vstack([arm_features(ctx, arm, self.items) for arm in arms])
        z = np.vstack([self._account_features(arm) for arm in arms])
        b = self.account_coef_.get(ctx.account, np.zeros(z.shape[1]))
        account_cov = self.account_cov_.get(ctx.account, np.diag(1.0 / self._account_precision()))
        return phi @ self.coef_ + z @ b, phi @ self.cov_ @ phi.T + z @ account_cov @ z.T

    def expected_revenue(self, ctx: Context, arms: Sequence[Arm]) -> np.ndarray:
        """Each arm's price times its acceptance probability under the posterior mean (a hold earns 0)."""
        offers = [arm for arm in arms if arm != HOLD]
        if not offers:
            return np.zeros(len(arms))
        logits, _ = self._posterior(ctx, offers)
        values = dict(zip(offers, np.array([arm.price for arm in offers]) * _sigmoid(logits), strict=True))
        return np.array([values.get(arm, 0.0) for arm in arms])

    def contact_value(self, ctx: Context) -> float:
        """What a contact with the account has earned per decided offer: its mean, pulled to everyone's."""
        total, n = self._earned.get("all", (0.0, 0))
        if not n:
            return 0.0
        own, own_n = self._earned.get(ctx.account, (0.0, 0))
        return (own + ACCOUNT_WEIGHT * total / n) / (own_n + ACCOUNT_WEIGHT)

    def hold_cost(self, ctx: Context) -> float:
        """What sending costs in later offers: a contact's value for each of the account's last 30 days'.

        A sent offer tires the customer for the offers after it; an account contacted often has more of
        them coming, so its recent contacts stand for the later offers this one would tire.
        """
        return self.contact_value(ctx) * ctx.contacts_30d

    def choice_probabilities(self, ctx: Context, arms: Sequence[Arm], rng: np.random.Generator) -> np.ndarray:
        """Each arm's probability of being chosen (exploration share plus its share of the best scores).

        `HOLD` among `arms` takes the share of the best scores whose offer is worth holding.
        """
        offers = [i for i, arm in enumerate(arms) if arm != HOLD]
        logits, cov = self._posterior(ctx, [arms[i] for i in offers])
        prices = np.array([arms[i].price for i in offers])
        if self.temperature == 0:
            bound = logits + self.optimism * np.sqrt(np.clip(np.diag(cov), 0.0, None))
            scores = (prices * _sigmoid(bound))[None, :]
        else:
            chol = np.linalg.cholesky(self.temperature * cov + 1e-9 * np.eye(len(offers)))
            draws = logits + rng.standard_normal((DRAWS, len(offers))) @ chol.T
            scores = prices * _sigmoid(draws)
        winners = scores.argmax(axis=1)
        wins = np.zeros(len(arms))
        held = np.zeros(len(winners), dtype=bool)
        if len(offers) < len(arms) and self.hold_below > 0:
            held = (prices * _sigmoid(logits))[winners] < self.hold_below * self.hold_cost(ctx)
            wins[arms.index(HOLD)] = held.mean()
        wins[offers] = np.bincount(winners[~held], minlength=len(offers)) / len(winners)
        explore = np.zeros(len(arms))
        explore[offers] = self.exploration / len(offers)
        return explore + (1.0 - self.exploration) * wins

    def propose(self, ctx: Context, arms: Sequence[Arm], rng: np.random.Generator) -> Proposal:
        """Draw an arm from `choice_probabilities`, so the logged propensity is the one actually used.

        With `hold_below` above 0, `HOLD` is among the alternatives.
        """
        if self.hold_below > 0 and HOLD not in arms:
            arms = [*arms, HOLD]
        probs = self.choice_probabilities(ctx, arms, rng)
        pick = int(rng.choice(len(arms), p=probs / probs.sum()))
        alternatives = tuple(zip(arms, map(float, probs), strict=True))
        return Proposal(arms[pick], float(probs[pick]), self.name, alternatives)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


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
