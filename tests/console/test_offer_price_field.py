"""The offer page's price field holds the price in its currency's decimals: approving unchanged keeps it."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from api import catalog, catalog_versions, policy
from fleet.audit import operator
from fleet.db import session
from fleet.tables import Offer
from tests.api.support import NOW, World, add_prediction
from tests.console.client import ConsoleClient, sign_in


@pytest.mark.parametrize(("currency", "price", "step"), [("KWD", "2400.125", "0.001"), ("JPY", "2400", "1")])
def test_approving_without_touching_the_price_keeps_it(
    client: ConsoleClient, world: World, currency: str, price: str, step: str
) -> None:
    source = catalog.DEFAULT_FILE.read_text(encoding="utf-8")
    source = source.replace("version: 2", "version: 3").replace("currency: EUR", f"currency: {currency}")
    source = source.replace("default: [2400.00,", f"default: [{price},")
    with session(world.engine) as sess:
        catalog_versions.add(sess, source=source, by=operator(), now=NOW)
        catalog_versions.activate(sess, version=3, by=operator(), now=NOW)
    machine = world.machines["acme"][2]
    add_prediction(world.engine, machine, risk=0.75, hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        offer_id = sess.scalars(select(Offer.id).where(Offer.machine_id == machine)).one()
    sign_in(client, world, "am-acme")
    page = f"/offers/{offer_id}"
    field = re.search(r'<input id="price"[^>]*>', client.get(page).text).group(0)
    shown = html.unescape(re.search(r'value="([^"]*)"', field).group(1))
    assert f'step="{step}"' in field
    client.post(f"{page}/approve", data={"price": shown}, headers={"referer": f"http://testserver{page}"})
    with session(world.engine) as sess:
        offer = sess.get_one(Offer, offer_id)
        assert (offer.status, offer.price, offer.currency) == ("approved", float(price), currency)
