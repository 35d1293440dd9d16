"""The ledger pages over HTTP on SQLite and PostgreSQL: figures equal the tables, CSV equals the page,
each role sees what its rights allow."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from api import catalog
from api.app import create_app
from api.catalog import format_money
from api.console import render
from fleet.db import session
from fleet.tables import DataUseGrant
from tests.api.support import World, build_world
from tests.console import ledger_seed
from tests.console.client import ConsoleClient, sign_in

DAY = datetime(2026, 11, 23, 8, tzinfo=UTC)  # the seeded book's last day, not the world's: it is pinned
START, END = datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)  # the default period
ALERT_KEYS = ("alerts", "confirmed", "no_fault", "no_fault_rate", "downtime_hours", "downtime_cost")


@pytest.fixture
def world(database_url: str) -> World:
    world = build_world(database_url, webhook_url="http://127.0.0.1:9/crm")
    ledger_seed.seed(world)
    return world


@pytest.fixture
def client(world: World) -> Iterator[ConsoleClient]:
    with ConsoleClient(create_app(world.settings)) as client:
        client.app.state.clock = lambda: DAY  # the default period ends on the seeded book's day
        yield client


def ledger_table(html: str) -> dict[str, dict[str, str]]:
    """The ledger table's cells by account row and figure."""
    rows = {}
    for key, body in re.findall(r'<tr data-account="([^"]+)">(.*?)</tr>', html, re.S):
        rows[key] = {k: v.strip() for k, v in re.findall(r'<td data-k="([^"]+)"[^>]*>(.*?)</td>', body, re.S)}
    return rows


def shown(figures: dict[str, float]) -> dict[str, str]:
    """The figures as the page writes them."""
    pct = {
        k: "—" if figures[k] is None else f"{figures[k] * 100:.0f} %" for k in ("no_fault_rate", "acceptance")
    }
    text = {k: str(v) for k, v in figures.items() if isinstance(v, int)}
    return (
        text
        | pct
        | {
            "revenue": format_money(figures["revenue"], "EUR"),
            "downtime_hours": f"{figures['downtime_hours']:.0f} h",
            "downtime_cost": format_money(figures["downtime_cost"], "EUR"),
        }
    )


def csv_rows(client: ConsoleClient, url: str) -> list[dict[str, str]]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_the_book_equals_the_tables_and_its_csv(client: ConsoleClient, world: World) -> None:
    sign_in(client, world, "admin")
    response = client.get("/ledger")
    assert response.status_code == 200, response.text
    table = ledger_table(response.text)
    acme, globex = (world.customers[t] for t in ("acme", "globex"))
    want = {cid: ledger_seed.expected(world.engine, cid, START, END) for cid in (acme, globex)}
    assert table[str(acme)] == shown(want[acme])
    assert table[str(globex)] == shown(want[globex])
    total = {
        k: want[acme][k] + want[globex][k] for k in want[acme] if k not in ("no_fault_rate", "acceptance")
    }
    total["no_fault_rate"] = total["no_fault"] / (total["confirmed"] + total["no_fault"])
    total["acceptance"] = total["won"] / (total["won"] + total["lost"])
    assert table["total"] == shown(total)
    # The seeded figures are not empty: an approved price keeps its cents on the page.
    assert want[acme]["won"] >= 1 and "EUR 1,850.50" in table[str(acme)]["revenue"]

    rows = csv_rows(client, "/ledger.csv")
    assert [r["account"] for r in rows] == ["acme", "globex", "All accounts shown"]
    for row, figures in zip(rows, (want[acme], want[globex], total), strict=True):
        assert (row["start"], row["end"], row["currency"]) == ("2025-12-01", "2026-11-23", "EUR")
        for key, column in (("alerts", "alerts"), ("confirmed", "confirmed_failures"), ("won", "offers_won")):
            assert int(row[column]) == figures[key]
        for key in ("proposed", "approved", "sent", "lost"):
            assert int(row[f"offers_{key}"]) == figures[key]
        assert float(row["revenue"]) == pytest.approx(figures["revenue"])
        assert float(row["downtime_avoided_cost"]) == pytest.approx(figures["downtime_cost"])
        assert float(row["acceptance_rate"]) == pytest.approx(figures["acceptance"], abs=1e-4)
        assert float(row["no_fault_found_rate"]) == pytest.approx(figures["no_fault_rate"], abs=1e-4)


def test_a_chosen_period_and_one_account(client: ConsoleClient, world: World) -> None:
    sign_in(client, world, "admin")
    acme = world.customers["acme"]
    start, end = datetime(2025, 10, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    response = client.get(f"/ledger/{acme}?start=2025-10-01&end=2026-03-31")
    assert response.status_code == 200, response.text
    table = ledger_table(response.text)
    assert list(table) == [str(acme)]
    assert table[str(acme)] == shown(ledger_seed.expected(world.engine, acme, start, end))
    assert table[str(acme)]["revenue"] == "EUR 2,849.50"  # 1,850.50 won in March, 999.00 in October
    assert response.text.count('data-month="') == 2 * 6  # two bars for each of six months
    rows = csv_rows(client, f"/ledger.csv?start=2025-10-01&end=2026-03-31&account={acme}")
    assert [(r["account"], r["revenue"]) for r in rows] == [("acme", "2849.50")]
    assert client.get("/ledger?start=2026-05-01&end=2026-04-01").status_code == 400


def test_the_downtime_avoided_follows_the_catalog_version_in_force(
    client: ConsoleClient, world: World
) -> None:
    """Downtime economics are catalog data: a newly activated version's costs are what the ledger counts."""
    sign_in(client, world, "admin")
    acme = str(world.customers["acme"])
    before = ledger_table(client.get("/ledger").text)[acme]["downtime_cost"]
    shipped = catalog.DEFAULT_FILE.read_text(encoding="utf-8")
    old = catalog.default().version
    doubled = shipped.replace(f"version: {old}\n", f"version: {old + 1}\n")
    for line in re.findall(r"^  \w+: \{hours: \d+, cost_per_hour: [\d.]+\}$", shipped, re.M):
        cost = float(line.rsplit(" ", 1)[1].rstrip("}"))
        doubled = doubled.replace(line, line.replace(f"{cost:.2f}", f"{2 * cost:.2f}"))
    assert doubled.count("cost_per_hour") == shipped.count("cost_per_hour") and doubled != shipped
    assert client.post("/admin/catalog", data={"source": doubled}).status_code == 200
    assert client.post(f"/admin/catalog/{old + 1}/activate").status_code == 200
    after = ledger_table(client.get("/ledger").text)[acme]
    # `expected` reads the version in force as well
    want = ledger_seed.expected(world.engine, world.customers["acme"], START, END)
    assert after["downtime_cost"] == format_money(want["downtime_cost"], "EUR") != before


def test_an_account_manager_sees_only_their_accounts(client: ConsoleClient, world: World) -> None:
    acme, globex = world.customers["acme"], world.customers["globex"]
    sign_in(client, world, "am-acme")
    assert list(ledger_table(client.get("/ledger").text)) == [str(acme)]  # one account: no total repeating it
    assert 'href="/ledger"' in client.get("/accounts").text
    assert f'href="/ledger/{acme}"' in client.get(f"/accounts/{acme}").text
    assert [r["account"] for r in csv_rows(client, "/ledger.csv")] == ["acme"]  # the page's rows
    assert client.get(f"/ledger/{globex}").status_code == 404
    assert client.get(f"/ledger.csv?account={globex}").status_code == 404
    sign_in(client, world, "cust-globex")
    assert list(ledger_table(client.get("/ledger").text)) == [str(globex)]  # its own account: no total
    sign_in(client, world, "tech")  # field service has no right to offers, so none to the ledger
    assert client.get("/ledger").status_code == 403
    assert client.get("/ledger.csv").status_code == 403


def test_without_offers_consent_an_account_manager_sees_no_alert_figures(
    client: ConsoleClient, world: World
) -> None:
    acme = world.customers["acme"]
    with session(world.engine) as sess:
        revoke = update(DataUseGrant).where(
            DataUseGrant.customer_id == acme, DataUseGrant.purpose == "offers"
        )
        sess.execute(revoke.values(revoked_at=START))
    sign_in(client, world, "am-acme")
    row = ledger_table(client.get("/ledger").text)[str(acme)]
    want = shown(ledger_seed.expected(world.engine, acme, START, END))
    assert {k: row[k] for k in ALERT_KEYS} == dict.fromkeys(ALERT_KEYS, "—")
    assert {k: v for k, v in row.items() if k not in ALERT_KEYS} == {
        k: v for k, v in want.items() if k not in ALERT_KEYS
    }
    csv_row = csv_rows(client, "/ledger.csv")[0]
    assert (csv_row["alerts"], csv_row["downtime_avoided_cost"]) == ("", "")


def test_console_money_is_the_catalogs_with_cents() -> None:
    # Already with cents before (commit bf763e9); now the console calls the one formatter.
    for value in (0.5, 1850.5, 1_234_567.0):
        assert render.templates.env.filters["money"](value, "EUR") == format_money(value, "EUR")
    assert render.templates.env.filters["money"](1850.5, "EUR") == "EUR 1,850.50"
