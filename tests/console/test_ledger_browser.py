"""The ledger in headless Chromium: an account manager's own accounts only, figures equal to the tables,
the CSV download equal to the page, the chart keeping its aspect ratio."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from api.catalog import format_money
from api.console.ledger import HEIGHT, WIDTH
from tests.console import ledger_seed
from tests.console.conftest import Console
from tests.console.test_browser import sign_in
from tests.console.test_ledger_pages import shown

pytestmark = pytest.mark.slow
START, END = datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)


@pytest.fixture(scope="module", autouse=True)
def seeded(console: Console) -> None:
    ledger_seed.seed(console.world)


def page_table(page: Page) -> dict[str, dict[str, str]]:
    """The ledger table's cells by account row and figure, as the browser shows them."""
    rows = {}
    for row in page.locator("#ledger tr[data-account]").all():
        cells = row.locator("td[data-k]")
        keys = [cells.nth(i).get_attribute("data-k") for i in range(cells.count())]
        rows[row.get_attribute("data-account")] = dict(zip(keys, cells.all_inner_texts(), strict=True))
    return rows


def show_period(page: Page) -> None:
    page.get_by_label("From").fill("2025-12-01")
    page.get_by_label("To (included)").fill("2026-11-23")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()


def test_an_account_manager_sees_only_their_accounts_and_the_csv_equals_the_page(
    page: Page, console: Console
) -> None:
    world = console.world
    acme = world.customers["acme"]
    sign_in(page, console, "am-acme")
    page.goto(f"{console.url}/accounts")
    page.locator("#ledger-link").click()
    show_period(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Ledger of your accounts")
    table = page_table(page)
    assert list(table) == [str(acme)]  # one account: no total repeating its row
    assert table[str(acme)] == shown(ledger_seed.expected(world.engine, acme, START, END))
    assert "globex" not in page.locator("#ledger").inner_text()

    with page.expect_download() as download:
        page.locator("#ledger-csv").click()
    with open(download.value.path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["account"] for r in rows] == ["acme"]
    for row, key in zip(rows, (str(acme),), strict=True):
        cells = table[key]
        assert (row["start"], row["end"]) == ("2025-12-01", "2026-11-23")
        for column, k in (
            ("alerts", "alerts"),
            ("confirmed_failures", "confirmed"),
            ("no_fault_found", "no_fault"),
            ("offers_proposed", "proposed"),
            ("offers_approved", "approved"),
            ("offers_sent", "sent"),
            ("offers_won", "won"),
            ("offers_lost", "lost"),
        ):
            assert row[column] == cells[k], column
        assert format_money(float(row["revenue"]), row["currency"]) == cells["revenue"]
        assert format_money(float(row["downtime_avoided_cost"]), row["currency"]) == cells["downtime_cost"]
        assert f"{float(row['acceptance_rate']) * 100:.0f} %" == cells["acceptance"]
        assert f"{float(row['no_fault_found_rate']) * 100:.0f} %" == cells["no_fault_rate"]


def test_an_admin_sees_the_whole_book_and_one_account_with_its_chart(page: Page, console: Console) -> None:
    world = console.world
    acme, globex = world.customers["acme"], world.customers["globex"]
    sign_in(page, console, "admin")
    page.goto(f"{console.url}/ledger")
    show_period(page)
    table = page_table(page)
    assert list(table) == [str(acme), str(globex), "total"]
    assert table[str(globex)] == shown(ledger_seed.expected(world.engine, globex, START, END))
    chart = page.locator("#ledger-chart svg").bounding_box()
    assert chart["width"] / chart["height"] == pytest.approx(WIDTH / HEIGHT, rel=0.02)  # not stretched
    console.shoot(page, "ledger")
    page.get_by_role("link", name="acme").click()
    page.wait_for_load_state()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ledger · acme")
    assert list(page_table(page)) == [str(acme)]
    assert page.url.endswith(f"/ledger/{acme}?start=2025-12-01&end=2026-11-23")
