"""History rows name what the machine's type declares: its components and failure modes, any version."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy import func, select

from fleet import history_import, machine_import, machine_types
from fleet.csv_import import ColumnMap, ImportRefused
from fleet.tables import Label

TYPE = """machine_types:
  - name: azure_machine
    sensors: [{name: volt, unit: V}]
    components: [{name: comp1}, {name: comp2}, {name: comp3}{more}]
    failure_modes:
      - {name: comp1_failure, component: comp1, description: comp1 fails}
"""
HISTORY = """tenant,machine,ts,kind,component,mode
azure,1,2015-01-05T06:00:00Z,failure,comp1,comp1_failure
azure,1,2015-01-06T06:00:00Z,failure,comp9,
azure,1,2015-01-07T06:00:00Z,failure,comp2,comp2_failure
azure,1,2015-01-08T06:00:00Z,maintenance,,
azure,2,2015-01-09T06:00:00Z,failure,pump,
azure,1,2015-01-10T06:00:00Z,replacement,comp4,
"""
REASONS = [
    (3, "comp9 is not a component of azure_machine (comp1, comp2, comp3)"),
    (4, "comp2_failure is not a failure mode of azure_machine (comp1_failure)"),
    (7, "comp4 is not a component of azure_machine (comp1, comp2, comp3)"),
]


def _apply(engine, tmp_path, more: str = "") -> None:  # noqa: ANN001
    (tmp_path / "types.yaml").write_text(TYPE.replace("{more}", more), encoding="utf-8")
    machine_types.apply_file(engine=engine, path=tmp_path / "types.yaml")


@pytest.fixture
def fleet(tmp_path, engine) -> None:
    """Machine 1 of the defined type azure_machine, machine 2 of model3, which no types file defines."""
    _apply(engine, tmp_path)
    (tmp_path / "m.csv").write_text("tenant,machine,machine_type\nazure,1,azure_machine\nazure,2,model3\n")
    machine_import.import_machines(engine=engine, path=tmp_path / "m.csv", mapping=ColumnMap())


def _labels(engine) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Label))


def test_a_component_or_mode_its_type_does_not_declare_refuses_the_file_by_line(tmp_path, engine, fleet):
    (tmp_path / "h.csv").write_text(HISTORY)
    for dry_run in (True, False):
        with pytest.raises(ImportRefused) as refused:
            history_import.import_history(
                engine=engine, path=tmp_path / "h.csv", mapping=ColumnMap(), dry_run=dry_run
            )
        assert [(r.line, r.reason) for r in refused.value.report.rejects] == REASONS
    assert _labels(engine) == 0


def test_with_a_reject_file_the_rows_naming_undeclared_parts_go_to_it(tmp_path, engine, fleet):
    (tmp_path / "h.csv").write_text(HISTORY)
    report = history_import.import_history(
        engine=engine, path=tmp_path / "h.csv", mapping=ColumnMap(), reject_file=tmp_path / "r.csv"
    )
    assert (report.new, len(report.rejects)) == (3, 3)
    with open(tmp_path / "r.csv", newline="") as f:
        assert [(int(r["line"]), r["reason"]) for r in csv.DictReader(f)] == REASONS
    # Machine 2's type is defined nowhere: nothing to check its row against, and the summary says so.
    assert report.notes == [
        "note: machine type 'model3' (1 row) is not defined yet: its components and failure modes "
        "are not checked"
    ]


def test_a_component_an_older_version_of_the_type_declared_stays_valid(tmp_path, engine, fleet):
    _apply(engine, tmp_path, more=", {name: comp4}")  # version 2 declares comp4
    (tmp_path / "h.csv").write_text(HISTORY.splitlines()[0] + "\n" + HISTORY.splitlines()[6] + "\n")
    assert history_import.import_history(engine=engine, path=tmp_path / "h.csv", mapping=ColumnMap()).new == 1
    _apply(engine, tmp_path)  # version 3 drops it again: the stored row, and its file, stay valid
    again = history_import.import_history(engine=engine, path=tmp_path / "h.csv", mapping=ColumnMap())
    assert (again.new, again.existing, again.rejects) == (0, 1, [])
