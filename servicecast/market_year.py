"""A simulated year of the sales loop: prediction → alert → finding → offer → approval → answer → revenue.

It runs in process over `simulators.market` with the product's catalog (eligibility, price points),
offer policy and outcome ledger. Every policy meets the same opportunities and the same customers, and
the same contact budget: no offer goes to a customer who already had `budget_per_week` real contacts
(sent offers and field visits) in the 7 days ending that day. Visits are never refused, so a visit after a
send can still fill a week past the budget, as in the product. A policy that holds an offer ("no offer")
keeps the contact; the hold is logged in the ledger with its propensity and earns nothing.

The budget is checked at the two moments `api.offers` checks it: when an offer is proposed (the proposal
gate, `offers.blocking_reason`) and again when it is sent the next day (the account manager's approval,
`offers.approve`, which the product refuses with 409). Between the two, another offer to the same account
may have gone out or a technician may have visited; an offer refused at approval is not sent, earns
nothing, uses no contact and stays out of the ledger and the policy's learning (the product leaves it
proposed, with no outcome; the simulation does not approve it again later), like an offer withdrawn
before it left.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from api import catalog
from api.offer_ledger import Entry, Ledger
from api.offer_policy import HOLD, Arm, Context, OfferPolicy, Proposal, arms_for
from simulators import market as sim

EXPIRY_DAYS = 30


@dataclass
class YearResult:
    """What one policy earned over the simulated year."""

    policy: str
    seed: int
    revenue: float = 0.0
    expected_revenue: float = 0.0  # the market's acceptance probability times the price, per answer
    daily: list[float] = field(default_factory=list)  # cumulative accepted revenue at each day's end
    ledger: Ledger = field(default_factory=Ledger)
    # Per ledger entry, the hidden situation it was answered in (opportunity, contacts in 30 days, NFF known)
    situations: list[tuple[sim.Opportunity, int, bool]] = field(default_factory=list)
    proposed: int = 0
    held: int = 0  # decisions to send no offer (kept contacts)
    sent: int = 0
    accepted: int = 0
    withdrawn: int = 0
    expired: int = 0
    blocked_by_budget: int = 0  # alerts with no proposal: the budget was full at proposal
    refused_at_approval: int = 0  # proposed offers not sent: the budget was full when they were to leave
    alerts: int = 0
    findings: Counter = field(default_factory=Counter)  # technicians' findings on their visits
    # Every real contact in the order it happened: (day, customer, True for a sent offer, False for a visit)
    contact_log: list[tuple[int, int, bool]] = field(default_factory=list)


@dataclass
class _Sent:
    opp: sim.Opportunity
    ctx: Context
    proposal: Proposal


def run_year(
    world: sim.Market,
    policy: OfferPolicy,
    *,
    rng: np.random.Generator,
    days: int = 365,
    budget_per_week: int = 3,
    cat: catalog.Catalog | None = None,
) -> YearResult:
    """Run `policy` over the market's year and return its revenue, counts and outcome ledger."""
    cat = cat or catalog.default()
    result = YearResult(policy.name, world.seed)
    contacts: dict[int, list[int]] = defaultdict(list)  # customer -> days of real contacts
    history: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # customer -> [offers decided, accepted]
    tiers = {m.index: m.tier for m in world.machines}
    to_send: dict[int, list[_Sent]] = defaultdict(list)
    answers: dict[int, list[tuple[_Sent, int]]] = defaultdict(list)
    visits: dict[int, list[sim.Opportunity]] = defaultdict(list)
    by_day: dict[int, list[sim.Opportunity]] = defaultdict(list)
    for opp in world.opportunities:
        by_day[opp.day].append(opp)
        visits[opp.finding_day].append(opp)
    live: set[int] = set()  # machines with an offer not yet answered
    for day in range(days):
        for opp in visits.get(day, ()):
            customer = world.machines[opp.machine].customer
            contacts[customer].append(day)
            result.contact_log.append((day, customer, False))
            result.findings[opp.finding] += 1
        for sent, send_day in answers.pop(day, ()):
            _answer(world, sent, send_day, day, result, history, contacts, tiers, policy)
            live.discard(sent.opp.machine)
        for sent in to_send.pop(day, ()):
            opp = sent.opp
            if opp.finding == "no_fault_found" and opp.finding_day <= day:
                result.withdrawn += 1  # the alert was resolved "no fault found" before the offer left
                live.discard(opp.machine)
                continue
            customer = world.machines[opp.machine].customer
            if budget_full(contacts[customer], day=day, budget=budget_per_week):
                result.refused_at_approval += 1  # the approval gate: the offer stays unsent, no contact
                live.discard(opp.machine)
                continue
            contacts[customer].append(day)
            result.contact_log.append((day, customer, True))
            result.sent += 1
            due = day + opp.answer_delay if opp.answers else day + EXPIRY_DAYS
            answers[due].append((sent, day))
        for opp in by_day.get(day, ()):
            result.alerts += 1
            sent = _propose(
                world, opp, day, cat, policy, rng, result, contacts, history, tiers, live, budget_per_week
            )
            if sent is not None:
                live.add(opp.machine)
                to_send[day + 1].append(sent)
        result.daily.append(result.revenue)
    return result


def budget_full(days: list[int], *, day: int, budget: int) -> bool:
    """Whether contacts on `days` fill the budget of the 7 days ending on `day` (both gates use it)."""
    return sum(1 for d in days if d > day - 7) >= budget


def _propose(
    world, opp, day, cat, policy, rng, result, contacts, history, tiers, live, budget
) -> _Sent | None:
    machine = world.machines[opp.machine]
    customer = world.customers[machine.customer]
    if opp.machine in live:
        return None
    items = catalog.eligible(
        mode=opp.mode, risk=opp.risk, tier=tiers[opp.machine], lead_hours=opp.lead_hours, catalog=cat
    )
    if not items:
        return None
    if budget_full(contacts[machine.customer], day=day, budget=budget):
        result.blocked_by_budget += 1
        return None
    last = max(contacts[machine.customer], default=None)
    decided, accepted = history[machine.customer]
    ctx = Context(
        machine_type=machine.machine_type,
        mode=opp.mode,
        risk=opp.risk,
        lead_hours=opp.lead_hours,
        segment=customer.segment,
        tier=tiers[opp.machine],
        month=world.month(day),
        days_since_contact=None if last is None else float(day - last),
        offers_before=decided,
        accepted_before=accepted,
        account=machine.customer,
        contacts_30d=sum(1 for d in contacts[machine.customer] if d > day - 30),
    )
    proposal = policy.propose(ctx, arms_for(items, customer.segment), rng)
    if proposal.arm == HOLD:
        result.held += 1
        alternatives = tuple(a for a, _ in proposal.alternatives)
        result.ledger.add(Entry(ctx, HOLD, proposal.propensity, 0.0, alternatives))
        result.situations.append((opp, ctx.contacts_30d, False))
        return None
    result.proposed += 1
    return _Sent(opp, ctx, proposal)


def accept_probability(
    *, world: sim.Market, opp: sim.Opportunity, arm: Arm, contacts_30d: int, found_no_fault: bool
) -> float:
    """The market's hidden probability that the customer of `opp` takes the offer `arm`."""
    return world.accept_probability(
        opp,
        item=arm.item,
        price=arm.price,
        list_price=arm.list_price,
        contacts_30d=contacts_30d,
        found_no_fault=found_no_fault,
    )


def _answer(world, sent, send_day, day, result, history, contacts, tiers, policy) -> None:
    opp, arm = sent.opp, sent.proposal.arm
    customer = world.machines[opp.machine].customer
    revenue = 0.0
    recent = sum(1 for d in contacts[customer] if send_day - 30 < d < send_day)
    no_fault = opp.finding == "no_fault_found" and opp.finding_day <= day
    if opp.answers:
        p = accept_probability(world=world, opp=opp, arm=arm, contacts_30d=recent, found_no_fault=no_fault)
        result.expected_revenue += p * arm.price
        if opp.draw < p:
            revenue = arm.price
            result.accepted += 1
            if arm.item == "contract_upgrade":
                tiers[opp.machine] = "premium"
    else:
        result.expired += 1
    result.revenue += revenue
    history[customer][0] += 1
    history[customer][1] += revenue > 0
    alternatives = tuple(a for a, _ in sent.proposal.alternatives)
    result.ledger.add(Entry(sent.ctx, arm, sent.proposal.propensity, revenue, alternatives))
    result.situations.append((opp, recent, no_fault))
    policy.learn(sent.ctx, arm, revenue)
