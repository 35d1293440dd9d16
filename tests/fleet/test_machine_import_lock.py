"""A machines import leaves SQLite's write lock to other writers while it reads its file (an ingester)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from fleet import machine_import
from fleet.csv_import import ColumnMap, ImportRefused
from fleet.db import make_engine
from fleet.tables import Customer, Machine, Site
from tests.fleet.test_hostile_files import count
from tests.fleet.test_import_bounds import write

ROWS = 300


def _file(tmp_path, *extra: str):  # noqa: ANN001, ANN202
    lines = (f"m{i},2020-01-{i % 28 + 1:02},model{i % 4},site{i % 10},SN{i:09}" for i in range(ROWS))
    return write(tmp_path / "machines.csv", "machine,installed,machine_type,site,serial", *lines, *extra)


def _writing_beside(engine: Engine, monkeypatch, at_call: int) -> list[str]:  # noqa: ANN001
    """When the import parses its `at_call`-th row, another connection with the production busy timeout (5 s,
    make_engine's default) commits a write in a table of its own, as an ingester's batch: what happened."""
    other = make_engine(engine.url.render_as_string(hide_password=False))
    with other.begin() as conn:
        conn.execute(text("CREATE TABLE beside (id INTEGER PRIMARY KEY)"))
    happened: list[str] = []
    parse, calls = machine_import._parse, []

    def parsed(row, mapping):  # noqa: ANN001, ANN202
        calls.append(1)
        if len(calls) == at_call:
            try:
                with other.begin() as conn:
                    conn.execute(text("INSERT INTO beside DEFAULT VALUES"))
                happened.append("committed")
            except OperationalError as exc:
                happened.append(str(exc.orig))
            finally:
                other.dispose()
        return parse(row, mapping)

    monkeypatch.setattr(machine_import, "_parse", parsed)
    return happened


def test_a_writer_commits_while_a_machines_import_reads_its_file_again(sqlite_engine, tmp_path, monkeypatch):
    # The import reads its file twice; it held the write lock (BEGIN IMMEDIATE) over the whole second read,
    # so a writer waited for the rest of the file and failed after its busy timeout ('database is locked').
    # Now the rows go to a temporary table first, and only the short registration takes the lock.
    happened = _writing_beside(sqlite_engine, monkeypatch, at_call=ROWS + ROWS // 2)  # mid second read
    report = machine_import.import_machines(
        engine=sqlite_engine, path=_file(tmp_path), mapping=ColumnMap(tenant="acme")
    )
    assert happened == ["committed"]
    assert (report.rows, report.new, report.existing) == (ROWS, ROWS, 0)
    assert (count(sqlite_engine, Machine), count(sqlite_engine, Site)) == (ROWS, 10)


def test_a_machines_import_refused_after_its_rows_were_staged_stores_nothing(engine, tmp_path, monkeypatch):
    # All or nothing still: a row that turns bad between the two reads (here: its parse fails the second time)
    # refuses the file after the good rows were staged, and nothing of them reaches the store.
    parse, calls = machine_import._parse, []

    def parsed(row, mapping):  # noqa: ANN001, ANN202
        calls.append(1)
        if len(calls) == 2 * ROWS:
            raise ValueError("changed between the reads")
        return parse(row, mapping)

    monkeypatch.setattr(machine_import, "_parse", parsed)
    with pytest.raises(ImportRefused):
        machine_import.import_machines(engine=engine, path=_file(tmp_path), mapping=ColumnMap(tenant="acme"))
    assert count(engine, Machine) == count(engine, Customer) == count(engine, Site) == 0
    again = machine_import.import_machines(
        engine=engine, path=_file(tmp_path), mapping=ColumnMap(tenant="acme")
    )
    assert (again.new, count(engine, Machine)) == (ROWS, ROWS)  # the staging table of the refused run is gone
