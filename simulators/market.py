"""A simulated service market: customers with hidden, seeded buying behaviour, and machines that need service.

The behaviour model is fixed here and never tuned to favour an offer policy. A customer's answer to an
offer depends on its segment, its budget rhythm over the year, its price sensitivity, its response to
urgency (risk, lead time), its contact fatigue and its preference between offer types; none of these is
shown to the policy, which sees only the segment, the machine and the prediction. Technicians' findings
follow the machine's true state. Every random draw that decides an outcome is made up front per
opportunity (common random numbers), so two policies meet the same machines, faults and customers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

SEGMENTS = ("small", "mid", "key_account")
SEGMENT_SHARE = (0.5, 0.35, 0.15)
# Failure modes per machine type (as in simulators/fleet_types.yaml).
MODES = {
    "centrifugal_pump": ("bearing_wear", "seal_leak", "impeller_fouling", "coupling_failure"),
    "air_compressor": ("clogged_filter", "overheating", "valve_leak", "motor_trip"),
    "cnc_spindle": ("bearing_wear", "overheating", "spindle_crash"),
}
# Mean liking of each offer type per segment (logit units); each customer deviates from it.
SEGMENT_TASTE = {
    "small": {
        "inspection_visit": 0.6,
        "spare_parts_kit": 0.2,
        "wear_part_replacement": -0.3,
        "contract_upgrade": -1.2,
    },
    "mid": {
        "inspection_visit": 0.0,
        "spare_parts_kit": 0.3,
        "wear_part_replacement": 0.3,
        "contract_upgrade": -0.4,
    },
    "key_account": {
        "inspection_visit": -0.5,
        "spare_parts_kit": 0.0,
        "wear_part_replacement": 0.5,
        "contract_upgrade": 0.6,
    },
}
PRICE_SENSITIVITY = {"small": 6.0, "mid": 4.0, "key_account": 2.5}
BUDGET_RHYTHMS = ("flat", "quarter_end", "year_end")
FAILURES_PER_YEAR = 0.9
FALSE_ALARMS_PER_YEAR = 0.5
NO_ANSWER = 0.15  # share of offers a customer never answers (they expire)


@dataclass(frozen=True, slots=True)
class Customer:
    """One buying organisation and its hidden behaviour."""

    index: int
    segment: str
    base: float
    taste: dict[str, float]
    price_sensitivity: float
    size_aversion: float
    urgency: float
    fatigue: float
    rhythm: str
    rhythm_amplitude: float


@dataclass(frozen=True, slots=True)
class MachineSpec:
    """A simulated machine: its owner, type and contract tier at the start of the year."""

    index: int
    customer: int
    machine_type: str
    tier: str


@dataclass(frozen=True, slots=True)
class Opportunity:
    """An alert-worthy prediction on a machine, with the truth behind it and its pre-drawn randomness."""

    day: int
    machine: int
    mode: str
    risk: float
    lead_hours: float
    real_fault: bool
    finding: str  # confirmed_fault | replaced_before_failure | no_fault_found
    finding_day: int
    answer_delay: int
    answers: bool
    draw: float  # the customer accepts when draw < probability


@dataclass
class Market:
    """A seeded market of customers and machines and a year of service opportunities."""

    seed: int
    customers: list[Customer] = field(default_factory=list)
    machines: list[MachineSpec] = field(default_factory=list)
    opportunities: list[Opportunity] = field(default_factory=list)
    start: date = date(2027, 1, 1)

    def month(self, day: int) -> int:
        """The calendar month (1–12) of a simulated day."""
        return (self.start + timedelta(days=day)).month

    def accept_probability(
        self,
        opp: Opportunity,
        *,
        item: str,
        price: float,
        list_price: float,
        contacts_30d: int,
        found_no_fault: bool,
    ) -> float:
        """The hidden probability that the customer of `opp` buys `item` at `price`."""
        customer = self.customers[self.machines[opp.machine].customer]
        month = self.month(opp.day + 1)
        utility = (
            customer.base
            + customer.taste.get(item, 0.0)
            + customer.urgency * (4.0 * (opp.risk - 0.65) + (0.8 if opp.lead_hours < 168 else -0.2))
            - customer.price_sensitivity * (price / list_price - 1.0)
            - customer.size_aversion * math.log(price / 1000.0)
            - customer.fatigue * contacts_30d
            + _budget(customer, month)
            - (1.5 if found_no_fault else 0.0)
        )
        return 1.0 / (1.0 + math.exp(-utility))


def _budget(customer: Customer, month: int) -> float:
    if customer.rhythm == "quarter_end":
        return customer.rhythm_amplitude * (1.0 if month % 3 == 0 else -0.5)
    if customer.rhythm == "year_end":
        return customer.rhythm_amplitude * {11: 1.0, 12: 1.2, 1: -1.0, 2: -0.6}.get(month, 0.0)
    return 0.0


def build(seed: int, *, machines: int = 500, customers: int = 60, days: int = 365) -> Market:
    """A market with hidden customer behaviour and a year of opportunities, all from `seed`."""
    rng = np.random.default_rng(seed)
    market = Market(seed=seed)
    for c in range(customers):
        segment = SEGMENTS[rng.choice(len(SEGMENTS), p=SEGMENT_SHARE)]
        taste = {k: float(v + rng.normal(0.0, 0.8)) for k, v in SEGMENT_TASTE[segment].items()}
        market.customers.append(
            Customer(
                index=c,
                segment=segment,
                base=float(rng.normal(-1.0, 0.5)),
                taste=taste,
                price_sensitivity=float(PRICE_SENSITIVITY[segment] * rng.lognormal(0.0, 0.4)),
                size_aversion=float(rng.uniform(0.1, 0.6) * (1.5 if segment == "small" else 1.0)),
                urgency=float(rng.uniform(0.0, 1.5)),
                fatigue=float(rng.uniform(0.1, 0.7)),
                rhythm=BUDGET_RHYTHMS[rng.integers(len(BUDGET_RHYTHMS))],
                rhythm_amplitude=float(rng.uniform(0.3, 1.2)),
            )
        )
    weights = rng.dirichlet(np.full(customers, 0.8))
    owners = rng.choice(customers, size=machines, p=weights)
    types = tuple(MODES)
    for m in range(machines):
        tier = "basic" if rng.random() < 0.6 else "premium"
        market.machines.append(MachineSpec(m, int(owners[m]), types[rng.integers(len(types))], tier))
    for spec in market.machines:
        market.opportunities.extend(_year_of(spec, rng, days))
    market.opportunities.sort(key=lambda o: (o.day, o.machine))
    return market


def _year_of(spec: MachineSpec, rng: np.random.Generator, days: int) -> list[Opportunity]:
    out = []
    for real, rate in ((True, FAILURES_PER_YEAR), (False, FALSE_ALARMS_PER_YEAR)):
        for _ in range(rng.poisson(rate * days / 365)):
            day = int(rng.integers(days))
            risk = float(rng.uniform(0.55, 0.98) if real else rng.uniform(0.5, 0.85))
            lead = float(rng.gamma(2.0, 120.0))
            if real:
                finding = "replaced_before_failure" if rng.random() < 0.3 else "confirmed_fault"
            else:
                finding = "no_fault_found"
            out.append(
                Opportunity(
                    day=day,
                    machine=spec.index,
                    mode=MODES[spec.machine_type][rng.integers(len(MODES[spec.machine_type]))],
                    risk=round(risk, 3),
                    lead_hours=round(lead, 1),
                    real_fault=real,
                    finding=finding,
                    finding_day=day + int(rng.integers(0, 6)),
                    answer_delay=int(rng.integers(2, 15)),
                    answers=bool(rng.random() > NO_ANSWER),
                    draw=float(rng.random()),
                )
            )
    return out


def next_year(world: Market, years: int = 1, *, days: int = 365) -> Market:
    """The same customers and machines `years` on: new faults, findings and answers, same behaviour."""
    rng = np.random.default_rng([world.seed, years])
    later = Market(
        seed=world.seed,
        customers=world.customers,
        machines=world.machines,
        start=date(world.start.year + years, 1, 1),
    )
    for spec in later.machines:
        later.opportunities.extend(_year_of(spec, rng, days))
    later.opportunities.sort(key=lambda o: (o.day, o.machine))
    return later
