"""The catalog file: checked with line numbers, and offers written as a person would write them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from api import catalog

SHIPPED = catalog.DEFAULT_FILE.read_text(encoding="utf-8")


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_shipped_catalog_is_valid_versioned_and_has_every_language() -> None:
    cat = catalog.default()
    assert cat.version >= 2 and cat.currency == "EUR"
    for item in cat.items:
        assert set(catalog.LANGUAGES) <= set(item.text)
        assert all(1 <= len(points) <= 3 for points in item.prices.values())


def test_every_problem_is_reported_with_its_line_and_field() -> None:
    broken = (
        SHIPPED.replace("min_risk: 0.6", "min_risk: 1.6")
        .replace("Inspection visit for {machine}", "Inspection visit for {machine_code}")
        .replace("default: [450.00, 405.00, 495.00]", "default: [450.00, 405.00, 495.00, 520.00]")
    )
    with pytest.raises(catalog.CatalogFileError) as caught:
        catalog.parse(broken, source="catalog.yaml")
    found = {(p.line, p.field) for p in caught.value.problems}
    assert (_line(broken, "min_risk: 1.6"), "items[2].min_risk") in found
    assert (_line(broken, "{machine_code}"), "items[3].text.en.title") in found
    assert (_line(broken, "520.00"), "items[3].prices.default") in found
    assert "catalog.yaml:" in str(caught.value) and "{machine_code}" in str(caught.value)


def test_bad_yaml_and_an_unknown_field_name_their_line() -> None:
    with pytest.raises(catalog.CatalogFileError) as caught:
        catalog.parse(SHIPPED.replace("currency: EUR", "currency: EUR\ncolour: blue"), source="c.yaml")
    assert [(p.line, p.field) for p in caught.value.problems] == [
        (_line(SHIPPED, "currency: EUR") + 1, "colour")
    ]
    with pytest.raises(catalog.CatalogFileError) as caught:
        catalog.parse("version: [1\n", source="c.yaml")
    assert caught.value.problems[0].line == 2 and "YAML" in caught.value.problems[0].message


def test_a_field_given_twice_is_refused_at_its_second_line() -> None:
    """YAML itself keeps the last of two equal keys silently; the catalog, like the types file, says so."""
    with pytest.raises(catalog.CatalogFileError) as caught:
        catalog.parse(SHIPPED.replace("currency: EUR", "currency: EUR\ncurrency: USD"), source="c.yaml")
    assert [(p.line, p.field, p.message) for p in caught.value.problems] == [
        (_line(SHIPPED, "currency: EUR") + 1, "currency", "given twice")
    ]


def test_money_has_its_currency_and_cents() -> None:
    assert catalog.format_money(1850.5, "EUR") == "EUR 1,850.50"
    assert catalog.format_money(1850.5, "EUR", "de") == "1.850,50 EUR"


@pytest.mark.parametrize("mode", ["impeller_fouling", "limit:vibration_rms_mm_s"])
@pytest.mark.parametrize("language", catalog.LANGUAGES)
def test_offer_text_has_no_internal_names_in_either_language(language: str, mode: str) -> None:
    cat = catalog.default()
    for item in cat.items:
        title, text = catalog.render(
            item,
            language=language,
            machine="Pump 7",
            machine_type="centrifugal_pump",
            mode=mode,
            risk=0.734,
            time_to_failure=None,
            now=datetime(2026, 11, 23, 8, tzinfo=UTC),
            price=1850.5,
            value=9000.0,
        )
        assert "Pump 7" in title and "73 %" in text
        assert not re.search(r"[a-z]+_[a-z]+|limit:", title + text), (title, text)
        assert ("EUR 1,850.50" if language == "en" else "1.850,50 EUR") in text


def test_the_api_shows_the_catalog_in_force_to_account_managers_only(database_url) -> None:
    from api.app import API_PREFIX
    from tests.api.support import build_world

    world = build_world(database_url)
    with world.client() as client:
        shown = client.get(f"{API_PREFIX}/catalog", headers=world.headers("am-acme"))
        assert shown.status_code == 200 and shown.json()["version"] == catalog.default().version
        assert [i["key"] for i in shown.json()["items"]][0] == "contract_upgrade"
        assert client.get(f"{API_PREFIX}/catalog", headers=world.headers("cust-acme")).status_code == 403


def test_an_admin_sets_a_customers_segment_and_language_and_its_offers_follow(database_url) -> None:
    from api import policy
    from api.app import API_PREFIX
    from fleet.db import session
    from fleet.tables import Offer
    from tests.api.support import NOW, add_prediction, build_world

    world = build_world(database_url)
    acme = world.customers["acme"]
    with world.client() as client:
        path = f"{API_PREFIX}/catalog/customers/{acme}"
        profile = {"segment": "small", "language": "de"}
        assert client.put(path, json=profile, headers=world.headers("am-acme")).status_code == 403
        assert client.put(path, json={"segment": "huge"}, headers=world.headers("admin")).status_code == 409
        assert client.put(path, json=profile, headers=world.headers("admin")).json() == profile
    add_prediction(world.engine, world.machines["acme"][2], risk=0.75, hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        offer = sess.query(Offer).filter_by(machine_id=world.machines["acme"][2]).one()
        assert (offer.language, offer.price, offer.context["segment"]) == ("de", 2300.0, "small")
        assert offer.title.startswith("Geplanter Tausch") and "2.300,00 EUR" in offer.reason
