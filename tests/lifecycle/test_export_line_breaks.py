"""The data export's CSVs read back, with Python's csv module, as the Parquet's values: a CR, LF, quote or
comma inside text a machine or a person wrote stays inside its cell on every CSV path."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import update

from fleet import export_csv
from fleet.db import session
from fleet.tables import DataUseGrant, Label, Machine, MachineEvent
from tests.api.support import NOW, World, build_world, exported, resolve_alert, store_fw

TEXTS = ["lone\rCR", "CR\r\nLF", "lone\nLF", 'a "quote", a comma', "\rstarts with CR", "end\r"]


@pytest.fixture
def world(database_url: str, tmp_path) -> World:
    return build_world(database_url, archive_url=str(tmp_path / "archive"))


def _csv_texts(table: pa.Table) -> dict[str, list[str]]:
    """The text columns as the CSV must read back: the Parquet's values, formula-like ones behind a `'`."""
    shown = export_csv.as_text(table)
    return {
        name: ["" if v is None else v for v in shown.column(name).to_pylist()]
        for name in shown.column_names
        if pa.types.is_string(kind := shown.schema.field(name).type) or pa.types.is_large_string(kind)
    }


def test_every_csv_reads_back_as_its_parquet_with_line_breaks_in_text(world: World) -> None:
    acme, machine = world.customers["acme"], world.machines["acme"][0]
    alert = world.alerts["acme"][0]
    resolve_alert(world, alert, "seal worn\rreplaced\r\nsee photo")
    with session(world.engine) as sess:
        for seq, text in enumerate(TEXTS, start=1):  # what a machine sent on its events topic
            sess.add(
                MachineEvent(
                    customer_id=acme,
                    machine_id=machine,
                    seq=seq,
                    ts=NOW,
                    code="E1",
                    text=text,
                    received_at=NOW,
                )
            )
            # Tables with a boolean column (service history, machines, consent), once written by pandas.
            sess.add(
                Label(
                    customer_id=acme,
                    machine_id=machine,
                    ts=NOW,
                    kind="failure",
                    component=f"c{seq}",
                    source="import",
                    ref=text,
                    precursor=seq % 2 == 0,
                )
            )
        sess.execute(update(Machine).where(Machine.id == machine).values(serial="SN\r1"))
        sess.execute(
            update(DataUseGrant).where(DataUseGrant.customer_id == acme).values(granted_by="Ann\rLee")
        )
    store_fw(world, "v1\r2", lambda i: {"temperature_c": 20.0 + i})
    zipped = exported(world)
    names = [n.removesuffix(".csv") for n in zipped.namelist() if n.endswith(".csv")]
    assert {"machines", "events", "alerts", "service_history", "consent"} <= set(names)
    for name in names:
        table = pq.read_table(io.BytesIO(zipped.read(name + ".parquet")))
        header, *rows = csv.reader(io.StringIO(zipped.read(name + ".csv").decode(), newline=""))
        assert header == table.column_names, name
        assert len(rows) == table.num_rows, name
        for column, expected in _csv_texts(table).items():
            at = header.index(column)
            assert [row[at] for row in rows] == expected, (name, column)
    events = pq.read_table(io.BytesIO(zipped.read("events.parquet"))).column("text").to_pylist()
    assert sorted(events) == sorted(TEXTS)  # the Parquet keeps every value as stored
