"""A column mapping that names no field, or a column the file lacks, refuses the import before any row."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from fleet import errors, history_import, machine_import
from fleet.csv_import import ColumnMap
from fleet.tables import Label, Machine, Telemetry
from servicecast.cli import app
from tests.ingest.support import register_fleet

MACHINES = "id,tenant,model,commissioned\nbp-020,acme,booster_pump,2023-04-01\n"
HISTORY = "ts,machine,tenant,kind,component\n2026-01-20T14:00:00Z,bp-020,acme,failure,bearing\n"
READINGS = "ts,tenant,machine,counter,vibration\n2026-01-20T14:00:00Z,acme,1,17,2.5\n"


def _count(engine, table) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(table))


def _file(tmp_path, name: str, body: str):  # noqa: ANN001, ANN202
    (tmp_path / name).write_text(body)
    return tmp_path / name


def _import_machines(engine, tmp_path, **columns: str):  # noqa: ANN001, ANN202
    """MACHINES imported with its id and model mapped, and these columns besides."""
    cmap = ColumnMap(columns={"machine": "id", "machine_type": "model", **columns})
    path = _file(tmp_path, "m.csv", MACHINES)
    return machine_import.import_machines(engine=engine, path=path, mapping=cmap)


def test_a_misspelt_field_refuses_the_machines_file_instead_of_dropping_its_column(engine, tmp_path):
    with pytest.raises(errors.InvalidInput, match=r"no field 'instaled'.*installed"):
        _import_machines(engine, tmp_path, instaled="commissioned")
    assert _count(engine, Machine) == 0


def test_a_mapped_column_the_file_lacks_refuses_the_history_file(engine, tmp_path):
    _import_machines(engine, tmp_path)
    cmap = ColumnMap(columns={"component": "part"})  # the file calls it `component`
    with pytest.raises(errors.InvalidInput, match=r"no column 'part' \(component\)"):
        history_import.import_history(engine=engine, path=_file(tmp_path, "h.csv", HISTORY), mapping=cmap)
    assert _count(engine, Label) == 0


def test_a_mapping_shared_by_imports_may_name_fields_this_import_does_not_read(engine, tmp_path):
    # The Azure mapping serves machines, history and telemetry: ts and code are none of a machine's fields.
    report = _import_machines(engine, tmp_path, ts="datetime", code="errorID")
    assert (report.new, report.written) == (1, True)


def test_a_misspelt_seq_mapping_refuses_the_readings_instead_of_storing_the_counter_as_a_sensor(
    database_url, engine, tmp_path
):
    register_fleet(engine, "acme", ["1"])
    path = _file(tmp_path, "readings.csv", READINGS)
    env = {"SERVICECAST_DATABASE_URL": database_url}
    result = CliRunner().invoke(
        app, ["telemetry", "import", str(path), "--column", "sequence=counter"], env=env
    )
    assert result.exit_code == 1, result.output
    assert "no field 'sequence'" in result.stderr
    assert _count(engine, Telemetry) == 0
