"""The ledger CSV an account manager opens in a spreadsheet: an account name never arrives as a formula."""

from __future__ import annotations

import csv
import io

import pyarrow as pa

from fleet import export_csv, registry
from tests.api.support import World
from tests.console.client import ConsoleClient, sign_in

HOSTILE = [
    '=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0",
    "-1+1",
    "@SUM(1)",
    "\t=1+1",
    "\r=1+1",
]


def test_an_account_name_that_reads_as_a_formula_is_written_as_text(
    client: ConsoleClient, world: World
) -> None:
    for i, name in enumerate(HOSTILE):
        registry.add_customer(engine=world.engine, tenant=f"hostile{i}", name=name)
    registry.add_customer(engine=world.engine, tenant="plain", name="Plain GmbH - Werk 2")
    registry.add_customer(engine=world.engine, tenant="split", name="Split\r=1+1")  # no row of its own
    sign_in(client, world, "admin")
    response = client.get("/ledger.csv")
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert len(rows) == len(HOSTILE) + 5
    accounts = {row["account"] for row in rows}
    assert {"'" + name for name in HOSTILE} <= accounts
    assert {"Plain GmbH - Werk 2", "Split\r=1+1", "acme", "globex", "All accounts shown"} <= accounts
    total = next(row for row in rows if row["account"] == "All accounts shown")
    assert total["revenue"] == "0.00" and total["currency"] == "EUR"  # figures stay plain numbers


def test_an_account_name_is_written_as_the_data_export_writes_the_same_text(
    client: ConsoleClient, world: World
) -> None:
    """One rule for both CSVs: a plain number stays as it is in the ledger, as in the export."""
    names = [*HOSTILE, "-1", "+41", "1e-05", "-.5", "-1\n", "- Werk 2"]
    for i, name in enumerate(names):
        registry.add_customer(engine=world.engine, tenant=f"named{i}", name=name)
    sign_in(client, world, "admin")
    response = client.get("/ledger.csv")
    assert response.status_code == 200, response.text
    accounts = {row["account"] for row in csv.DictReader(io.StringIO(response.text, newline=""))}
    exported = export_csv.as_text(pa.table({"name": names})).column("name").to_pylist()
    assert set(exported) <= accounts
    assert {"-1", "+41", "1e-05", "-.5"} <= accounts
