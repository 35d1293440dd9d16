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


def test_a_misspelt_field_refuses_the_machines_file_instead_of_dropping_its_column(engine, tmp_path):
    path = tmp_path / "machines.csv"
    path.write_text(MACHINES)
    cmap = ColumnMap(columns={"machine": "id", "machine_type": "model", "instaled": "commissioned"})
    with pytest.raises(errors.InvalidInput, match=r"no field 'instaled'.*installed"):
        machine_import.import_machines(engine=engine, path=path, mapping=cmap)
    assert _count(engine, Machine) == 0


def test_a_mapped_column_the_file_lacks_refuses_the_history_file(engine, tmp_path):
    machines = tmp_path / "machines.csv"
    machines.write_text(MACHINES)
    machine_import.import_machines(
        engine=engine, path=machines, mapping=ColumnMap(columns={"machine": "id", "machine_type": "model"})
    )
    path = tmp_path / "history.csv"
    path.write_text(HISTORY)
    cmap = ColumnMap(columns={"component": "part"})  # the file calls it `component`
    with pytest.raises(errors.InvalidInput, match=r"no column 'part' \(component\)"):
        history_import.import_history(engine=engine, path=path, mapping=cmap)
    assert _count(engine, Label) == 0


def test_a_mapping_shared_by_imports_may_name_fields_this_import_does_not_read(engine, tmp_path):
    path = tmp_path / "machines.csv"
    path.write_text(MACHINES)
    # The Azure mapping serves machines, history and telemetry: ts and code are none of a machine's fields.
    cmap = ColumnMap(columns={"machine": "id", "machine_type": "model", "ts": "datetime", "code": "errorID"})
    report = machine_import.import_machines(engine=engine, path=path, mapping=cmap)
    assert (report.new, report.written) == (1, True)


def test_a_misspelt_seq_mapping_refuses_the_readings_instead_of_storing_the_counter_as_a_sensor(
    database_url, engine, tmp_path
):
    register_fleet(engine, "acme", ["1"])
    path = tmp_path / "readings.csv"
    path.write_text(READINGS)
    env = {"SERVICECAST_DATABASE_URL": database_url}
    result = CliRunner().invoke(
        app, ["telemetry", "import", str(path), "--column", "sequence=counter"], env=env
    )
    assert result.exit_code == 1, result.output
    assert "no field 'sequence'" in result.stderr
    assert _count(engine, Telemetry) == 0
