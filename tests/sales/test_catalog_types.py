"""A catalog's numbers are numbers: `true`, `yes`, "12" or .inf is refused with its line and field, never read
as 1, 12 or an endless downtime, in the file, the API and the database."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from api import catalog, catalog_versions
from api.app import API_PREFIX
from fleet.audit import operator
from fleet.db import session
from fleet.tables import CatalogVersion
from tests.api.support import NOW, build_world

SHIPPED = catalog.DEFAULT_FILE.read_text(encoding="utf-8")
OLD = catalog.default().version
NEW = OLD + 1
# The shipped file as a new version: what an admin would add.
GOOD = SHIPPED.replace(f"version: {OLD}\n", f"version: {NEW}\n", 1)

# (what the good file says, what a wrong file says instead, the field named)
WRONG = [
    (f"version: {NEW}\n", "version: true\n", "version"),
    (f"version: {NEW}\n", 'version: "12"\n', "version"),
    ("offer_expiry_days: 30", "offer_expiry_days: yes", "offer_expiry_days"),
    ("offer_expiry_days: 30", 'offer_expiry_days: "30"', "offer_expiry_days"),
    ("exploration: 0.01", "exploration: off", "policy.exploration"),
    ("temperature: 0.0", 'temperature: "0"', "policy.temperature"),
    (
        "hours: 16, cost_per_hour: 900.00",
        "hours: true, cost_per_hour: 900.00",
        "downtime.centrifugal_pump.hours",
    ),
    (
        "hours: 16, cost_per_hour: 900.00",
        "hours: .inf, cost_per_hour: 900.00",
        "downtime.centrifugal_pump.hours",
    ),
    (
        "hours: 16, cost_per_hour: 900.00",
        'hours: 16, cost_per_hour: "900"',
        "downtime.centrifugal_pump.cost_per_hour",
    ),
    ("min_risk: 0.8", "min_risk: true", "items[0].min_risk"),
    ("min_risk: 0.8", 'min_risk: "0.8"', "items[0].min_risk"),
    ("min_lead_hours: 72", "min_lead_hours: yes", "items[0].min_lead_hours"),
    ("min_lead_hours: 72", "min_lead_hours: .inf", "items[0].min_lead_hours"),
    ("default: [1200.00,", "default: [true,", "items[2].prices.default[0]"),
    ("default: [1200.00,", 'default: ["1200",', "items[2].prices.default[0]"),
]


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_good_file_with_whole_numbers_for_decimals_is_read() -> None:
    cat = catalog.parse(GOOD.replace("cost_per_hour: 900.00", "cost_per_hour: 900"))
    assert cat.version == NEW and cat.downtime["centrifugal_pump"].cost_per_hour == 900.0
    assert (
        cat.downtime["centrifugal_pump"].hours == 16.0 and cat.item("contract_upgrade").min_lead_hours == 72
    )


@pytest.mark.parametrize(("good", "wrong", "field"), WRONG, ids=[w for _, w, _ in WRONG])
def test_a_wrong_type_is_refused_with_its_line_and_field(good: str, wrong: str, field: str) -> None:
    assert good in GOOD
    text = GOOD.replace(good, wrong, 1)
    with pytest.raises(catalog.CatalogFileError) as caught:
        catalog.parse(text, source="catalog.yaml")
    assert [(p.line, p.field) for p in caught.value.problems] == [(_line(text, wrong.strip()), field)]
    assert str(caught.value).startswith(f"catalog.yaml:{_line(text, wrong.strip())}: {field}: ")


def test_the_api_refuses_a_wrong_type_with_the_files_text_and_stores_nothing(database_url: str) -> None:
    text = GOOD.replace("min_risk: 0.8", "min_risk: true", 1).replace(
        "default: [1200.00,", 'default: ["1200",'
    )
    with pytest.raises(catalog.CatalogFileError) as caught:
        catalog.parse(text)
    world = build_world(database_url)
    with world.client() as client:
        answer = client.post(
            f"{API_PREFIX}/catalog/versions", json={"yaml": text}, headers=world.headers("admin")
        )
        assert answer.status_code == 422
        assert answer.json() == {"error": "invalid_catalog_file", "detail": str(caught.value)}
        assert f"catalog:{_line(text, 'min_risk: true')}: items[0].min_risk: " in answer.json()["detail"]
        with session(world.engine) as sess:
            assert sess.scalar(select(func.count()).select_from(CatalogVersion)) == 0
        added = client.post(
            f"{API_PREFIX}/catalog/versions", json={"yaml": GOOD}, headers=world.headers("admin")
        )
        assert added.status_code == 201 and added.json()["version"] == NEW


def test_a_version_stored_before_the_check_is_still_read_as_it_was_added(database_url: str) -> None:
    """A version the database kept with `min_risk: true` and `hours: "16"` was read as 1 and 16 when it was
    added; offers were priced from it, so it stays readable (and in force) as it was."""
    text = GOOD.replace("min_risk: 0.8", "min_risk: true", 1).replace("hours: 16,", 'hours: "16",', 1)
    world = build_world(database_url)
    with session(world.engine) as sess:
        sess.add(CatalogVersion(version=NEW, source=text, added_by="admin", added_at=NOW))
    with session(world.engine) as sess:
        catalog_versions.activate(sess, version=NEW, by=operator(), now=NOW)
    with session(world.engine) as sess:
        cat = catalog_versions.in_force(sess)
        assert cat.version == NEW and cat.item("contract_upgrade").min_risk == 1.0
        assert cat.downtime["centrifugal_pump"].hours == 16.0
        with pytest.raises(catalog.CatalogFileError):  # added today, the same text is refused
            catalog_versions.add(
                sess, source=text.replace(f"version: {NEW}", f"version: {NEW + 1}"), by=operator(), now=NOW
            )
    with world.client() as client:
        shown = client.get(f"{API_PREFIX}/catalog", headers=world.headers("am-acme"))
    assert shown.status_code == 200 and shown.json()["items"][0]["min_risk"] == 1.0


def test_a_stored_version_with_another_problem_is_still_refused() -> None:
    text = GOOD.replace("min_risk: 0.8", "min_risk: true", 1).replace("min_risk: 0.6", "min_risk: 1.6", 1)
    with pytest.raises(catalog.CatalogFileError) as caught:
        catalog.parse(text, stored=True)
    assert [p.field for p in caught.value.problems] == ["items[0].min_risk", "items[2].min_risk"]
