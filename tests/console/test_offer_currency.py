"""An offer's money in its own currency on every console page that lists it; an amount without a known
currency is never shown as EUR."""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError
from sqlalchemy import select

from api import catalog, catalog_versions, policy
from api.app import create_app
from api.console.render import templates
from fleet.audit import operator
from fleet.db import session
from fleet.tables import Offer
from tests.api.support import NOW, add_prediction, build_world
from tests.console.client import ConsoleClient, sign_in, visible

USD = (
    catalog.DEFAULT_FILE.read_text(encoding="utf-8")
    .replace("version: 2", "version: 3")
    .replace("currency: EUR", "currency: USD")
)


def test_an_offer_of_a_usd_catalog_is_shown_in_usd_wherever_it_is_listed(world_url) -> None:
    world = build_world(world_url)
    with session(world.engine) as sess:
        catalog_versions.add(sess, source=USD, by=operator(), now=NOW)
        catalog_versions.activate(sess, version=3, by=operator(), now=NOW)
    acme, machine = world.customers["acme"], world.machines["acme"][2]
    add_prediction(world.engine, machine, risk=0.75, hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        offer = sess.scalars(select(Offer).where(Offer.machine_id == machine)).one()
        offer_id, price, value = offer.id, offer.price, offer.expected_value
    assert offer.currency == "USD"
    with ConsoleClient(create_app(world.settings)) as console:
        sign_in(console, world, "am-acme")
        for url in ("/offers", f"/offers/{offer_id}", f"/accounts/{acme}", f"/machines/{machine}"):
            page = console.get(url)
            assert page.status_code == 200, url
            text = visible(page.text)
            assert f"USD {price:,.2f}" in text and f"USD {value:,.2f}" in text, url
        sign_in(console, world, "admin")
        shown = visible(console.get("/admin/catalog").text)
    assert "USD 450.00" in shown and "EUR" not in shown.split("Versions")[0]


@pytest.mark.parametrize("currency", ["None", "''"])
def test_an_amount_whose_currency_is_unknown_is_not_shown_as_eur(currency: str) -> None:
    """Before: `money` fell back to EUR when a page named no currency, and wrote `None 1,850.50` for None."""
    shown = templates.env.from_string(f"{{{{ 1850.5 | money({currency}) }}}}").render()
    assert shown == "1,850.50 (currency unknown)"
    with pytest.raises((TypeError, UndefinedError)):
        templates.env.from_string("{{ 1850.5 | money }}").render()
