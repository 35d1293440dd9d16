"""An offer for a prediction that names no failure mode: it fits only items for any mode and says "signs of
a coming failure" in the customer's language, never the placeholder the offer row keeps."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api import catalog, catalog_versions, offers, policy
from api.app import API_PREFIX
from fleet.audit import operator
from fleet.db import session
from fleet.tables import Offer
from tests.api.support import NOW, add_prediction, build_world

SHIPPED = catalog.DEFAULT_FILE.read_text(encoding="utf-8")
WORDS = {"en": "shows signs of a coming failure;", "de": "zeigt Anzeichen eines bevorstehenden Ausfalls;"}


def _offer(world, machine: int) -> Offer:
    with session(world.engine) as sess:
        return sess.scalars(select(Offer).where(Offer.machine_id == machine)).one()


@pytest.mark.parametrize("language", catalog.LANGUAGES)
def test_an_offer_without_a_failure_mode_says_a_coming_failure_in_the_customers_language(
    database_url, language: str
) -> None:
    world = build_world(database_url)
    machine = world.machines["acme"][2]
    with world.client() as client:
        path = f"{API_PREFIX}/catalog/customers/{world.customers['acme']}"
        assert (
            client.put(path, json={"language": language}, headers=world.headers("admin")).status_code == 200
        )
        add_prediction(world.engine, machine, risk=0.75, mode=None, hours_ahead=240)
        policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
        offer = _offer(world, machine)
        # the wear-part item is for named modes only; the spare-parts kit fits any
        assert (offer.catalog_item, offer.failure_mode) == ("spare_parts_kit", offers.UNNAMED_MODE)
        assert WORDS[language] in offer.reason and "unknown" not in offer.reason, offer.reason
        approved = client.post(
            f"{API_PREFIX}/offers/{offer.id}/approve", json={"price": 1100}, headers=world.headers("am-acme")
        )
    assert approved.status_code == 200, approved.text
    reason = _offer(world, machine).reason  # written again at the edited price
    assert WORDS[language] in reason and ("EUR 1,100.00" if language == "en" else "1.100,00 EUR") in reason


def test_a_prediction_without_a_failure_mode_does_not_fit_an_item_listing_unknown(database_url) -> None:
    world = build_world(database_url)
    machine = world.machines["acme"][2]
    source = SHIPPED.replace("version: 2", "version: 3").replace(
        "modes: [bearing_wear, seal_leak,", "modes: [unknown, bearing_wear, seal_leak,"
    )
    assert "modes: [unknown," in source
    with session(world.engine) as sess:
        catalog_versions.add(sess, source=source, by=operator(), now=NOW)
        catalog_versions.activate(sess, version=3, by=operator(), now=NOW)
    add_prediction(world.engine, machine, risk=0.75, mode=None, hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    assert _offer(world, machine).catalog_item == "spare_parts_kit"
