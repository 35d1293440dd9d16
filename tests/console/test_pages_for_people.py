"""What the console's second audit found on the demo's pages: frames, names and words a person knows."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import text, update

from fleet import registry
from fleet.db import session
from fleet.display import when
from fleet.tables import Alert, Customer
from tests.api.support import World
from tests.console.client import heading, sign_in, visible
from tests.console.test_ledger_pages import csv_rows, ledger_table

HTML = {"accept": "text/html"}


def test_an_unknown_address_keeps_the_menu_and_the_signed_in_name(client: TestClient, world: World) -> None:
    sign_in(client, world, "tech")
    answer = client.get("/no-such-page", headers=HTML)
    text = visible(answer.text)
    assert answer.status_code == 404 and "Page not found" in text
    assert "tech · field service" in text and "Sign out" in text
    assert 'href="/alerts"' in answer.text and 'href="/fleet"' in answer.text


def test_an_unknown_address_is_a_404_page_when_the_store_cannot_say_who_is_signed_in(
    client: TestClient, world: World
) -> None:
    sign_in(client, world, "tech")
    with world.engine.begin() as conn:  # the sessions' table gone: the lookup the page makes fails
        conn.execute(text("ALTER TABLE console_sessions RENAME TO console_sessions_away"))
    answer = client.get("/no-such-page", headers=HTML)
    assert answer.status_code == 404 and "Page not found" in visible(answer.text)
    assert "Sign out" not in visible(answer.text)  # the signed-out page: nobody could be looked up


def test_an_unknown_address_offers_a_signed_out_visitor_the_sign_in_page(client: TestClient) -> None:
    answer = client.get("/no-such-page", headers=HTML)
    assert answer.status_code == 404 and "Page not found" in visible(answer.text)
    assert "Sign out" not in answer.text and 'href="/login"' in answer.text


def _name_acme(world: World) -> str:
    """Give acme a name unlike its tenant id, as the demo's customers have."""
    with session(world.engine) as sess:
        sess.execute(update(Customer).where(Customer.tenant == "acme").values(name="Acme Pumps GmbH"))
    return "Acme Pumps GmbH"


def test_accounts_show_a_customers_name_and_the_tenant_id_only_where_an_admin_uses_it(
    client: TestClient, world: World
) -> None:
    name, acme = _name_acme(world), world.customers["acme"]
    for who in ("am-acme", "admin"):
        sign_in(client, world, who)
        listed = re.search(r'<tr>\s*<th scope="row">(.*?)</th>', client.get("/accounts").text, re.S).group(1)
        assert visible(listed).strip() == name, who
        assert heading(client.get(f"/accounts/{acme}").text) == name, who
    admin = client.get("/admin").text
    row = re.search(r'<tr data-customer="acme">(.*?)</tr>', admin, re.S).group(1)
    cells = [visible(cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)[:2]]
    assert cells == [name, "acme"]  # the id in its own column: the add-user form asks for it
    users = admin[admin.index('id="users"') :]
    for user in ("cust-acme", "am-acme"):
        sees = re.search(rf'<th scope="row">{user}</th>\s*<td>[^<]*</td>\s*<td>(.*?)</td>', users, re.S)
        assert visible(sees.group(1)).strip() == name, user


def _fleet_filters(client: TestClient) -> tuple[str, str]:
    """The fleet page's filter form: its markup and its visible text."""
    page = client.get("/fleet").text
    form = re.search(r'<form method="get" action="/fleet".*?</form>', page, re.S).group(0)
    return form, visible(form)


def test_a_fleet_filter_with_one_choice_is_not_offered(client: TestClient, world: World) -> None:
    fan = {"code": "acme-fan", "machine_type": "fan", "site": "Hall 2"}
    registry.add_machine(engine=world.engine, tenant="acme", **fan)
    sign_in(client, world, "cust-acme")
    form, text = _fleet_filters(client)
    assert 'name="customer"' not in form and "Customer" not in text  # its own name was the one choice
    assert "Site all Hall 2" in text  # its unsited pumps are not in Hall 2
    assert "Type all centrifugal pump fan" in text
    sign_in(client, world, "cust-globex")
    form, text = _fleet_filters(client)
    assert not re.search(r'name="(customer|site|type)"', form), text  # pumps only, no site
    sign_in(client, world, "admin")
    assert "Customer all acme globex" in _fleet_filters(client)[1]


def test_a_customers_ledger_is_its_own_account_not_a_book_with_a_total(
    client: TestClient, world: World
) -> None:
    acme = str(world.customers["acme"])
    sign_in(client, world, "cust-acme")
    ledger = client.get("/ledger").text
    assert heading(ledger) == "Ledger of your account"
    assert "All accounts shown" not in visible(ledger) and list(ledger_table(ledger)) == [acme]
    assert [row["account"] for row in csv_rows(client, "/ledger.csv")] == ["acme"]
    sign_in(client, world, "admin")
    assert list(ledger_table(client.get("/ledger").text))[-1] == "total"  # a book of accounts keeps it


def test_an_alerts_chart_marker_names_the_machine_its_failure_mode_and_when_it_was_raised(
    client: TestClient, world: World
) -> None:
    machine = world.machines["acme"][0]
    with session(world.engine) as sess:
        alert = sess.get(Alert, world.alerts["acme"][0])
        mode, raised = alert.failure_mode, alert.first_seen
    sign_in(client, world, "tech")
    page = client.get(f"/machines/{machine}?days=30").text  # the world's alerts were raised 11 days ago
    marks = re.findall(r'<line class="mark"[^>]*><title>(.*?)</title>', page, re.S)
    assert mode == "bearing_wear"
    assert [visible(m) for m in marks] == [f"Alert on acme-pump-0: bearing wear, raised {when(raised)}"]
