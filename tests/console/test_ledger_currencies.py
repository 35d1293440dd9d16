"""Ledger money in two currencies (an old catalog in EUR, a newer one in CHF): totals per currency, never one
number adding EUR to CHF, on the page, in its CSV and in the API's ledger."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from api.app import API_PREFIX, create_app
from fleet.db import session
from fleet.tables import Offer
from tests.api.support import NOW, World, build_world
from tests.console import ledger_seed
from tests.console.client import ConsoleClient, sign_in

PERIOD = "start=2025-10-01&end=2026-11-23"  # every seeded offer: acme's 999.00 of 2025-10-20 included


@pytest.fixture
def world(database_url: str) -> World:
    """The ledger's seeded world, with acme's October win and globex's May win recorded in CHF."""
    world = build_world(database_url, webhook_url="http://127.0.0.1:9/crm")
    ledger_seed.seed(world)
    with session(world.engine) as sess:
        sess.execute(update(Offer).where(Offer.revenue.in_([999.00, 2400.00])).values(currency="CHF"))
    return world


@pytest.fixture
def client(world: World) -> Iterator[ConsoleClient]:
    with ConsoleClient(create_app(world.settings)) as client:
        client.app.state.clock = lambda: NOW
        yield client


def revenue_cells(html: str) -> dict[str, str]:
    """The revenue cell of each ledger row, its tags dropped, by account key."""
    cells = {}
    for key, body in re.findall(r'<tr data-account="([^"]+)">(.*?)</tr>', html, re.S):
        cell = re.search(r'<td data-k="revenue"[^>]*>(.*?)</td>', body, re.S)
        cells[key] = " ".join(re.sub(r"<[^>]+>", " ", cell.group(1)).split())
    return cells


def test_the_page_shows_revenue_per_currency(client: ConsoleClient, world: World) -> None:
    sign_in(client, world, "admin")
    response = client.get(f"/ledger?{PERIOD}")
    assert response.status_code == 200, response.text
    cells = revenue_cells(response.text)
    assert cells[str(world.customers["acme"])] == "EUR 1,850.50 CHF 999.00"
    assert cells[str(world.customers["globex"])] == "EUR 0.00 CHF 2,400.00"
    assert cells["total"] == "EUR 1,850.50 CHF 3,399.00"


def test_the_csv_has_one_revenue_line_per_account_and_currency(client: ConsoleClient, world: World) -> None:
    sign_in(client, world, "admin")
    response = client.get(f"/ledger.csv?{PERIOD}")
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    money = [(r["account"], r["revenue"], r["currency"]) for r in rows]
    assert money == [
        ("acme", "1850.50", "EUR"),
        ("acme", "999.00", "CHF"),
        ("globex", "0.00", "EUR"),
        ("globex", "2400.00", "CHF"),
        ("All accounts shown", "1850.50", "EUR"),
        ("All accounts shown", "3399.00", "CHF"),
    ]
    # The counts are on the account's first line only, so that summing a column counts each offer once.
    acme_lines = [r for r in rows if r["account"] == "acme"]
    assert acme_lines[0]["offers_won"] == "2" and acme_lines[1]["offers_won"] == ""


def test_the_api_ledger_gives_revenue_per_currency(client: ConsoleClient, world: World) -> None:
    response = client.get(f"{API_PREFIX}/ledger", headers=world.headers("admin"))
    assert response.status_code == 200, response.text
    won = {row["model_version"]: row for row in response.json() if row["revenue_by_currency"]}
    assert list(won) == [None]  # the ledger's seeded offers name no model version
    assert won[None]["revenue_by_currency"] == {"CHF": 3399.0, "EUR": 1850.5}
    assert won[None]["revenue"] is None  # no single number adds two currencies
