"""A customer's ledger counts no offer the customer was never sent (the API shows it only those)."""

from __future__ import annotations

from api.app import API_PREFIX
from tests.api.support import World
from tests.console.client import ConsoleClient, sign_in
from tests.console.test_ledger_pages import csv_rows, ledger_table

UNSENT = ("proposed", "approved")


def test_a_customer_sees_no_count_of_offers_never_sent_to_it(client: ConsoleClient, world: World) -> None:
    acme, offer = str(world.customers["acme"]), world.offers["acme"][0]
    with world.client() as api:
        reject = f"{API_PREFIX}/offers/{offer}/reject"
        rejected = api.post(reject, json={"reason": "not now"}, headers=world.headers("am-acme"))
    assert rejected.status_code == 200, rejected.text
    sign_in(client, world, "am-acme")
    assert {k: ledger_table(client.get("/ledger").text)[acme][k] for k in UNSENT} == {
        "proposed": "1",
        "approved": "0",
    }
    sign_in(client, world, "cust-acme")
    assert client.get(f"/offers/{offer}").status_code == 404  # proposed, then rejected: never its own
    page = ledger_table(client.get("/ledger").text)
    assert list(page) == [acme]  # its own account, no total repeating it
    assert {k: page[acme][k] for k in (*UNSENT, "sent", "won")} == {
        "proposed": "—",
        "approved": "—",
        "sent": "0",
        "won": "0",
    }
    for row in csv_rows(client, "/ledger.csv"):
        assert (row["offers_proposed"], row["offers_approved"], row["offers_sent"]) == ("", "", "0")
    account = ledger_table(client.get(f"/ledger/{acme}").text)[acme]
    assert (account["proposed"], account["approved"]) == ("—", "—")
