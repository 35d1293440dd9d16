"""The catalog page and the API's catalog versions on SQLite and PostgreSQL: the version in force shown,
a bad version refused with its lines and nothing stored, a good one added, activated (audited) and used
by the next offer the policy proposes; admins only; forms need the session's CSRF token."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from api import catalog, catalog_versions, policy
from api.auth import Principal
from fleet.db import session
from fleet.tables import CatalogVersion, Offer, WorkflowEvent
from tests.api.support import NOW, World, add_prediction
from tests.console.client import ConsoleClient, flash, sign_in

SHIPPED = catalog.DEFAULT_FILE.read_text(encoding="utf-8")
OLD = catalog.default().version  # the shipped file's
NEW = OLD + 1
# The next version: the planned part replacement costs 2,500.50 in the default segment instead of 2,400.00.
GOOD = SHIPPED.replace(f"version: {OLD}\n", f"version: {NEW}\n").replace(
    "default: [2400.00, 2160.00, 2640.00]", "default: [2500.50, 2250.00, 2750.00]"
)
# Two problems: a risk above 1 and a template placeholder the catalog does not know.
BAD = GOOD.replace("min_risk: 0.7\n", "min_risk: 1.7\n").replace(
    "Inspection visit for {machine}", "Inspection visit for {machine_code}"
)


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def stored(world: World) -> list[int]:
    with session(world.engine) as sess:
        return list(sess.scalars(select(CatalogVersion.version).order_by(CatalogVersion.version)))


def in_force(world: World) -> int:
    with session(world.engine) as sess:
        return catalog_versions.in_force(sess).version


def test_the_admin_sees_the_catalog_in_force_with_prices_texts_and_downtime(
    client: ConsoleClient, world: World
) -> None:
    sign_in(client, world, "admin")
    assert 'href="/admin/catalog"' in client.get("/admin").text
    html = client.get("/admin/catalog").text
    assert f"In force for new offers: version {OLD}" in html
    spindle = re.search(r'<tr data-type="cnc_spindle">(.*?)</tr>', html, re.S).group(1)
    assert "24 h" in spindle and "EUR 2,500.00" in spindle and "EUR 60,000.00" in spindle
    part = re.search(r'<article class="card" data-item="wear_part_replacement">(.*?)</article>', html, re.S)
    assert "EUR 2,400.00 · EUR 2,160.00 · EUR 2,640.00" in part.group(1)
    assert "EUR 2,300.00" in part.group(1)  # the small segment's list price
    assert "bearing wear" in part.group(1) and "risk ≥ 70 %" in part.group(1)
    assert "Geplanter Tausch des Verschleißteils an {machine}" in part.group(1)  # the German template
    assert re.search(rf'<tr data-version="{OLD}">.*?shipped file.*?in force', html, re.S)


@pytest.mark.parametrize("who", ["tech", "am-acme", "cust-acme"])
def test_other_roles_may_neither_see_nor_change_the_catalog(
    client: ConsoleClient, world: World, who: str
) -> None:
    sign_in(client, world, who)
    assert 'href="/admin/catalog"' not in client.get("/notifications").text
    assert client.get("/admin/catalog").status_code == 403
    assert client.post("/admin/catalog", data={"source": GOOD}).status_code == 403
    assert stored(world) == []
    assert client.get("/api/v1/catalog/versions", headers=world.headers(who)).status_code == 403


def test_a_bad_version_shows_each_problem_with_its_line_and_changes_nothing(
    client: ConsoleClient, world: World
) -> None:
    sign_in(client, world, "admin")
    response = client.post("/admin/catalog", data={"source": BAD})
    assert response.status_code == 422
    problems = re.search(
        r'<div class="flash error" role="alert" id="catalog-problems">(.*?)</div>', response.text, re.S
    )
    text = re.sub(r"\s+", " ", problems.group(1))
    assert "2 problems" in text
    assert f"line {_line(BAD, 'min_risk: 1.7')}: items[1].min_risk:" in text
    assert f"line {_line(BAD, '{machine_code}')}: items[3].text.en.title:" in text
    assert "{machine_code}" in response.text  # the text is kept for correcting
    assert stored(world) == [] and in_force(world) == OLD
    with world.client() as api_client:
        api = api_client.post("/api/v1/catalog/versions", json={"yaml": BAD}, headers=world.headers("admin"))
    assert api.status_code == 422 and f"catalog:{_line(BAD, 'min_risk: 1.7')}: items[1].min_risk" in api.text
    assert stored(world) == []


def test_a_good_version_is_added_then_activated_and_new_offers_use_it(
    client: ConsoleClient, world: World
) -> None:
    sign_in(client, world, "admin")
    response = client.post(
        "/admin/catalog",
        files={"upload": ("catalog-v3.yaml", GOOD.encode(), "text/yaml")},
        data={"source": ""},
    )
    assert response.status_code == 200
    assert flash(response.text) == f"Catalog version {NEW} added; activate it to use it for new offers."
    assert stored(world) == [NEW] and in_force(world) == OLD  # added, not yet in force
    again = client.post("/admin/catalog", data={"source": GOOD})
    assert again.status_code == 422 and f"Catalog version {NEW} exists already" in again.text

    response = client.post(f"/admin/catalog/{NEW}/activate")
    assert flash(response.text) == f"Catalog version {NEW} is now in force for new offers."
    assert f"In force for new offers: version {NEW}" in response.text and "EUR 2,500.50" in response.text
    assert in_force(world) == NEW
    assert client.post(f"/admin/catalog/{NEW + 1}/activate").status_code == 404
    with session(world.engine) as sess:
        trail = sess.scalars(select(WorkflowEvent).where(WorkflowEvent.subject == "catalog")).all()
    assert [(e.action, e.subject_id, e.actor) for e in trail] == [
        ("catalog_added", NEW, "admin"),
        ("catalog_activated", NEW, "admin"),
    ]
    assert (trail[1].before, trail[1].after) == ({"version": OLD}, {"version": NEW})

    machine = world.machines["acme"][2]
    add_prediction(world.engine, machine, risk=0.75, hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        offer = sess.scalars(select(Offer).where(Offer.machine_id == machine)).one()
        assert (offer.catalog_version, offer.catalog_item, offer.price) == (
            NEW,
            "wear_part_replacement",
            2500.50,
        )
        assert "EUR 2,500.50" in offer.reason
    with world.client() as api:
        assert api.get("/api/v1/catalog", headers=world.headers("am-acme")).json()["version"] == NEW
        listed = api.get("/api/v1/catalog/versions", headers=world.headers("admin")).json()
    assert [(v["version"], v["active"], v["shipped"]) for v in listed] == [
        (NEW, True, False),
        (OLD, False, True),
    ]


def test_catalog_forms_without_the_session_csrf_token_are_refused(
    client: ConsoleClient, world: World
) -> None:
    sign_in(client, world, "admin")
    assert client.post("/admin/catalog", data={"source": GOOD, "csrf_token": ""}).status_code == 403
    assert stored(world) == []
    with world.client() as api:
        added = api.post("/api/v1/catalog/versions", json={"yaml": GOOD}, headers=world.headers("admin"))
        assert added.status_code == 201 and added.json()["version"] == NEW
    assert client.post(f"/admin/catalog/{NEW}/activate", data={"csrf_token": "forged"}).status_code == 403
    assert in_force(world) == OLD


def test_a_learning_policy_knows_the_items_of_the_version_in_force(world: World) -> None:
    """An item added by a new catalog version gets its own column in the acceptance model."""
    block = SHIPPED[SHIPPED.index("  - key: inspection_visit") :]
    added = GOOD.replace("policy: {name: first_fit", "policy: {name: learning") + block.replace(
        "key: inspection_visit", "key: thermal_scan"
    )
    admin = Principal(world.users["admin"], "admin", "admin", None)
    with session(world.engine) as sess:
        catalog_versions.add(sess, source=added, by=admin, now=NOW)
        catalog_versions.activate(sess, version=NEW, by=admin, now=NOW)
    with session(world.engine) as sess:
        chosen = policy._offer_policy(sess, world.settings)  # noqa: SLF001 - what each policy pass builds
    assert chosen.name == "learning"
    assert chosen.items == (*(item.key for item in catalog.default().items), "thermal_scan")
