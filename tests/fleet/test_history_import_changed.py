"""A history import reads its file twice: a file changed between the reads is refused, nothing written."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fleet import errors, history_import, machine_import
from fleet.csv_import import ColumnMap
from fleet.tables import Label, Machine
from servicecast.cli import app
from tests.fleet.file_changes import change_after_first_read
from tests.fleet.test_hostile_files import count
from tests.fleet.test_import_bounds import write
from tests.ingest.support import register_fleet

_CHANGES = {
    "a label the first read did not see": "acme,m2,2024-01-05T06:00:00Z,failure,pump",
    "a label given twice that the first read saw once": "acme,m1,2024-01-01T06:00:00Z,failure,pump",
    "a machine the first read did not look up": "acme,m3,2024-01-04T06:00:00Z,failure,pump",
}


@pytest.mark.parametrize("change", [*_CHANGES, "a row removed"])
@pytest.mark.parametrize("mode", ["refuse", "reject file", "dry run"])
def test_a_file_changed_between_its_two_reads_is_refused_with_nothing_written(
    engine, tmp_path, monkeypatch, change, mode
):
    register_fleet(engine, "acme", ["m1", "m2", "m3"])
    path = write(
        tmp_path / "history.csv",
        "tenant,machine,ts,kind,component",
        "acme,m1,2024-01-01T06:00:00Z,failure,pump",
        "acme,m1,2024-01-02T06:00:00Z,maintenance,pump",
        "acme,m2,2024-01-03T06:00:00Z,failure,pump",
    )

    def changed(lines: list[str]) -> list[str]:
        return lines[:-1] if change == "a row removed" else [*lines, _CHANGES[change]]

    change_after_first_read(monkeypatch, history_import, "_labels", path, changed)
    rejects = tmp_path / "rejects.csv"
    with pytest.raises(errors.InvalidInput, match=f"{path} changed while it was imported") as refused:
        history_import.import_history(
            engine=engine,
            path=path,
            mapping=ColumnMap(),
            reject_file=rejects if mode == "reject file" else None,
            dry_run=mode == "dry run",
            batch_size=1,  # labels written before the change is met: rolled back
        )
    assert str(refused.value).count("\n") == 0
    assert count(engine, Label) == 0
    assert not rejects.exists()


_FILES = {  # each command: where it reads first, a file, and a row a writer adds after that read
    "history": (
        history_import,
        "_labels",
        "tenant,machine,ts,kind,component",
        "acme,m1,2024-01-01T06:00:00Z,failure,p",
    ),
    "machines": (machine_import, "_survey", "tenant,machine", "acme,m3"),
}


@pytest.mark.parametrize("command", _FILES)
def test_the_cli_refuses_a_changed_file_in_one_line_exit_1_as_machines_import_does(
    sqlite_engine, tmp_path, monkeypatch, command
):
    register_fleet(sqlite_engine, "acme", ["m1", "m2"])
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    module, first, header, row = _FILES[command]
    path = write(tmp_path / f"{command}.csv", header, row)
    change_after_first_read(
        monkeypatch, module, first, path, lambda lines: [*lines, lines[-1].replace(",m", ",m4")]
    )
    done = CliRunner().invoke(app, [command, "import", str(path)])
    assert done.exit_code == 1, done.output
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"servicecast: {path} changed while it was imported (at line 3): nothing was written; "
        "import it again once nothing writes to it"
    ]
    assert (count(sqlite_engine, Label), count(sqlite_engine, Machine)) == (0, 2)
