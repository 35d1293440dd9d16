"""Real money in the catalog: ISO codes, a currency's own decimals, an edited price its text states, an
offer that keeps its price and currency when a new catalog version comes into force, a free offer in the
ledger."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from api import catalog, catalog_versions, events, offer_policy, offers, policy
from api.app import API_PREFIX
from fleet.audit import operator
from fleet.db import session
from fleet.tables import Customer, Machine, Offer, Prediction
from tests.api.support import NOW, World, add_prediction, build_world

SHIPPED = catalog.DEFAULT_FILE.read_text(encoding="utf-8")


def _offer_on_pump(database_url) -> tuple[World, int, int]:
    """A world whose acme pump 2 has a proposed wear-part offer at EUR 2,400.00: (world, machine, offer)."""
    world = build_world(database_url)
    machine = world.machines["acme"][2]
    add_prediction(world.engine, machine, risk=0.75, hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        return world, machine, sess.scalars(select(Offer.id).where(Offer.machine_id == machine)).one()


def _approve(world: World, offer_id: int, price: float):
    with world.client() as client:
        return client.post(
            f"{API_PREFIX}/offers/{offer_id}/approve", json={"price": price}, headers=world.headers("am-acme")
        )


def _problems(text: str) -> str:
    with pytest.raises(catalog.CatalogFileError) as caught:
        catalog.parse(text)
    return str(caught.value)


def test_a_currency_code_outside_iso_4217_is_refused() -> None:
    assert "ISO 4217" in _problems(SHIPPED.replace("currency: EUR", "currency: EUX"))


@pytest.mark.parametrize(("currency", "price"), [("EUR", "1234.565"), ("JPY", "1850.50"), ("CHF", "0.001")])
def test_a_price_point_finer_than_its_currency_is_refused_at_its_line(currency: str, price: str) -> None:
    text = SHIPPED.replace("currency: EUR", f"currency: {currency}").replace("450.00", price)
    problems = _problems(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if price in row)
    assert f":{line}:" in problems and currency in problems


def test_a_currency_without_cents_is_written_without_them() -> None:
    assert catalog.format_money(1850, "JPY") == "JPY 1,850"
    assert catalog.format_money(1850, "JPY", "de") == "1.850 JPY"
    assert catalog.format_money(1850.5, "CHF", "de") == "1.850,50 CHF"
    assert catalog.parse(SHIPPED.replace("currency: EUR", "currency: JPY")).currency == "JPY"


@pytest.mark.parametrize("price", [1850.505, 0.0])
def test_an_approval_price_the_currency_cannot_carry_is_refused(database_url, price: float) -> None:
    world, _, offer_id = _offer_on_pump(database_url)
    answer = _approve(world, offer_id, price)
    assert answer.status_code == 422, answer.text
    with session(world.engine) as sess:
        offer = sess.get(Offer, offer_id)
        assert (offer.status, offer.price) == ("proposed", 2400.0)


def test_an_offer_keeps_its_catalogs_currency_when_a_new_version_comes_into_force(database_url) -> None:
    world, machine, _ = _offer_on_pump(database_url)
    chf = SHIPPED.replace("version: 2", "version: 3").replace("currency: EUR", "currency: CHF")
    with session(world.engine) as sess:
        catalog_versions.add(sess, source=chf, by=operator(), now=NOW)
        catalog_versions.activate(sess, version=3, by=operator(), now=NOW)
    newer = add_prediction(world.engine, machine, risk=0.8, hours_ahead=200)
    with session(world.engine) as sess:
        assert offers.follow_estimate(sess, sess.get(Prediction, newer), NOW) == 1
    with session(world.engine) as sess:
        offer = sess.scalars(select(Offer).where(Offer.machine_id == machine)).one()
        assert (offer.currency, offer.price, offer.catalog_version) == ("EUR", 2400.0, 2)
        assert "EUR 2,400.00" in offer.reason and "CHF" not in offer.reason, offer.reason
        assert "80 %" in offer.reason  # the newer estimate was taken


def test_a_ledger_row_at_price_zero_does_not_break_the_learning_policy() -> None:
    ctx = offer_policy.Context("centrifugal_pump", "bearing_wear", 0.7, 100.0, "mid", "basic", 3, None, 0, 0)
    free = offer_policy.Arm("inspection_visit", 0, 0.0, 450.0)
    learner = offer_policy.build("learning", exploration=0.1, rows=[(ctx, free, 0.0)])
    arms = offer_policy.arms_for(catalog.default().items, "mid")
    proposal = learner.propose(ctx, arms, np.random.default_rng(1))
    probabilities = [p for _, p in proposal.alternatives]
    assert np.isfinite(probabilities).all() and sum(probabilities) == pytest.approx(1.0)


def test_an_edited_price_is_the_price_the_offers_text_and_crm_event_state(database_url) -> None:
    world, machine, offer_id = _offer_on_pump(database_url)
    answer = _approve(world, offer_id, 2100.5)
    assert answer.status_code == 200, answer.text
    with session(world.engine) as sess:
        offer = sess.get(Offer, offer_id)
        customer, machine_row = sess.get(Customer, offer.customer_id), sess.get(Machine, machine)
        event = events.offer_event(offer=offer, customer=customer, machine=machine_row, public_url="http://x")
    assert offer.price == 2100.5 and event["data"]["price"]["amount"] == 2100.5
    for text in (offer.reason, event["data"]["reason"]):
        assert "EUR 2,100.50" in text and "2,400.00" not in text, text


def test_a_long_title_template_still_gives_an_offer_whose_title_fits(database_url) -> None:
    world = build_world(database_url)
    machine = world.machines["acme"][2]
    long_title = "Planned replacement of the worn part on {machine} because of {failure}, {time_to_failure}"
    padded = long_title + " " + "x" * (199 - len(long_title))
    source = SHIPPED.replace("version: 2", "version: 3").replace(
        "title: Planned replacement of the worn part on {machine}", f"title: {padded}"
    )
    with session(world.engine) as sess:
        catalog_versions.add(sess, source=source, by=operator(), now=NOW)
        catalog_versions.activate(sess, version=3, by=operator(), now=NOW)
    add_prediction(world.engine, machine, risk=0.75, hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        title = sess.scalars(select(Offer.title).where(Offer.machine_id == machine)).one()
    assert len(title) == catalog.TITLE_MAX and title.endswith("…")
    assert title.startswith("Planned replacement of the worn part on acme-pump-2 because of worn bearings")


@pytest.mark.parametrize("placeholder", ["{price:.2f}", "{risk!r}", "{machine:>99999999}"])
def test_a_placeholder_with_a_format_of_its_own_is_refused_at_its_line(placeholder: str) -> None:
    text = SHIPPED.replace("Inspection visit for {machine}", f"Inspection visit for {placeholder}")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if placeholder in row)
    assert f":{line}: items[3].text.en.title" in _problems(text)
