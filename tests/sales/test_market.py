"""The simulated market: seeded, findings follow the true state, behaviour answers price and fatigue."""

from __future__ import annotations

from simulators import market


def test_same_seed_same_market_and_different_seed_different_market() -> None:
    a, b, c = market.build(7), market.build(7), market.build(8)
    assert a.opportunities == b.opportunities and a.customers == b.customers
    assert a.opportunities != c.opportunities
    assert len(a.machines) == 500 and len(a.customers) == 60


def test_findings_follow_the_machines_true_state() -> None:
    opps = market.build(3).opportunities
    assert {o.finding for o in opps if not o.real_fault} == {"no_fault_found"}
    assert {o.finding for o in opps if o.real_fault} == {"confirmed_fault", "replaced_before_failure"}
    assert all(o.finding_day >= o.day for o in opps)


def test_a_customer_buys_less_at_a_higher_price_and_after_more_contacts() -> None:
    m = market.build(5)
    opp = m.opportunities[0]

    def p(price: float, contacts: int) -> float:
        return m.accept_probability(
            opp,
            item="spare_parts_kit",
            price=price,
            list_price=1200.0,
            contacts_30d=contacts,
            found_no_fault=False,
        )

    assert p(1080.0, 0) > p(1200.0, 0) > p(1320.0, 0)
    assert p(1200.0, 0) > p(1200.0, 3)


def test_next_year_keeps_the_customers_and_draws_new_opportunities() -> None:
    first = market.build(4)
    second = market.next_year(first)
    assert second.customers is first.customers and second.machines is first.machines
    assert (
        second.opportunities != first.opportunities
        and second.opportunities == market.next_year(first).opportunities
    )
    assert second.month(0) == 1 and second.start.year == first.start.year + 1
