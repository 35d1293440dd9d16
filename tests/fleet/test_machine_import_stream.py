"""A machines import streams its good rows in one transaction: memory bounded, all or nothing, idempotent."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Engine

from fleet import errors, machine_import
from fleet.csv_import import ColumnMap, ImportRefused, ImportReport
from fleet.tables import Customer, Machine, Site
from tests.fleet.file_changes import change_after_first_read
from tests.fleet.test_hostile_files import count
from tests.fleet.test_import_bounds import peaks, traced, write

ACME = ColumnMap(tenant="acme")


def _machines(folder: Path, rows: int, *extra: str) -> Path:
    """A file of `rows` machines with a date, type, site (ten) and serial, then the `extra` lines."""
    lines = (f"m{i},2020-01-{i % 28 + 1:02},model{i % 4},site{i % 10},SN{i:09}" for i in range(rows))
    return write(folder / f"m{rows}.csv", "machine,installed,machine_type,site,serial", *lines, *extra)


def _peak(engine: Engine, folder: Path, rows: int, **options: object) -> tuple[int, ImportReport]:
    """Peak traced bytes of importing `rows` machines (`_machines`), and the report."""
    path = _machines(folder, rows)
    return traced(partial(machine_import.import_machines, engine=engine, path=path, mapping=ACME, **options))


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_machines_import_holds_a_batch_of_machines_not_the_file(
    sqlite_engine, tmp_path, monkeypatch, dry_run
):
    monkeypatch.setattr(machine_import, "BATCH", 500, raising=False)
    few, many, report = peaks(partial(_peak, sqlite_engine, tmp_path, dry_run=dry_run))
    # A machine held costs 1.1 to 1.5 kB traced: 3,000 more would be 3.4 MB more at the peak. Garbage the
    # collector has not reached yet moves the peak of the same import by up to 0.4 MB.
    assert many - few < 1_000_000, f"{few:,} bytes at the peak for 1,000 machines, {many:,} for 4,000"
    existing = 0 if dry_run else 1000  # the first 1,000 are the file imported before
    assert (report.rows, report.new, report.existing, report.rejects) == (4000, 4000 - existing, existing, [])
    assert count(sqlite_engine, Machine) == (0 if dry_run else 4000)
    assert count(sqlite_engine, Site) == (0 if dry_run else 10)


def test_a_machine_given_again_at_the_end_of_a_file_of_many_batches_refuses_it_whole_or_goes_aside(
    engine, tmp_path, monkeypatch
):
    monkeypatch.setattr(machine_import, "BATCH", 500, raising=False)
    path = _machines(tmp_path, 1200, "m1,2021-01-01,model1,site1,SN1")
    with pytest.raises(ImportRefused) as refused:
        machine_import.import_machines(engine=engine, path=path, mapping=ACME)
    assert [(r.line, r.reason) for r in refused.value.report.rejects] == [
        (1202, "same tenant and machine as line 3")
    ]
    assert count(engine, Machine) == count(engine, Customer) == count(engine, Site) == 0

    rejects = tmp_path / "rejects.csv"
    report = machine_import.import_machines(engine=engine, path=path, mapping=ACME, reject_file=rejects)
    assert (report.rows, report.new, report.existing, report.rejected) == (1201, 1200, 0, 1)
    again = machine_import.import_machines(engine=engine, path=path, mapping=ACME, reject_file=rejects)
    assert (again.rows, again.new, again.existing, again.rejected) == (1201, 0, 1200, 1)
    assert count(engine, Machine) == 1200 and rejects.read_text().count("\n") == 2


_CHANGES = {
    "a machine at a site the first read did not see": "m5,2020-01-01,model0,site-new,SN5",
    "a machine given twice that the first read saw once": "m0,2021-01-01,model1,site1,SN1",
}


@pytest.mark.parametrize("change", [*_CHANGES, "a row removed"])
@pytest.mark.parametrize("rejects", [False, True])
def test_a_file_changed_between_its_two_reads_is_refused_with_nothing_written(
    sqlite_engine, tmp_path, monkeypatch, change, rejects
):
    path = _machines(tmp_path, 3)

    def changed(lines: list[str]) -> list[str]:
        return lines[:-1] if change == "a row removed" else [*lines, _CHANGES[change]]

    change_after_first_read(monkeypatch, machine_import, "_survey", path, changed)
    reject_file = tmp_path / "rejects.csv" if rejects else None
    with pytest.raises(errors.InvalidInput, match=f"{path} changed while it was imported"):
        machine_import.import_machines(engine=sqlite_engine, path=path, mapping=ACME, reject_file=reject_file)
    assert count(sqlite_engine, Machine) == count(sqlite_engine, Customer) == count(sqlite_engine, Site) == 0
    assert not (tmp_path / "rejects.csv").exists()
