"""Every import checks a file's quoting in a read of its own before its rows: a file whose quoting breaks
after that check is refused where it broke, not read as the csv module would guess it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fleet import csv_import, errors
from fleet.csv_import import ColumnMap
from fleet.tables import Telemetry
from ingest import telemetry_import
from tests.fleet.file_changes import change_after_first_read
from tests.fleet.test_import_bounds import write
from tests.ingest.support import register_fleet


def test_a_telemetry_file_whose_quoting_breaks_after_the_check_stops_there_saying_what_is_stored(
    engine, tmp_path, monkeypatch
):
    register_fleet(engine, "acme", ["m1"])
    path = write(
        tmp_path / "t.csv",
        "tenant,machine,ts,temp",
        "acme,m1,2024-01-01T06:00:00Z,1",
        "acme,m1,2024-01-01T06:01:00Z,2",
    )
    # The csv module would read "1"2 as 12: the quoting check refuses such a cell, the rows' read must too.
    change_after_first_read(
        monkeypatch,
        csv_import,
        "_check_quoting",
        path,
        lambda lines: [*lines, 'acme,m1,2024-01-01T06:02:00Z,"1"2'],
    )
    with pytest.raises(errors.InvalidInput) as refused:
        telemetry_import.import_file(engine=engine, path=path, mapping=ColumnMap(), batch_size=1)
    assert str(refused.value) == (
        f"{path}: line 4: ',' expected after '\"': the file changed after its quoting was checked; "
        "the first 2 rows of the file are stored (the same import again stores none twice)"
    )
    with engine.connect() as conn:
        assert sorted(conn.scalars(select(Telemetry.seq))) == [1704088800000, 1704088860000]
