"""The bad rows of the import CLIs: listed by line, and written to a reject file checked before the import
without being created or touched."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from fleet import errors, registration
from servicecast.cli import app
from tests.ingest.support import register_fleet

# Each command with a file of one good row and one bad row, and with one whose quoting refuses it whole.
FILES = {
    "history": ("tenant,machine,ts,kind,component\n", "acme,m1,2024-01-01T06:00:00Z,failure,pump\n"),
    "machines": ("tenant,machine\n", "acme,m3\n"),
    "telemetry": ("tenant,machine,ts,temp\n", "acme,m1,2024-01-01T06:00:00Z,1\n"),
}
BAD = {"history": "acme,zz,2024-01-01,failure,p\n", "machines": "acme,bad/id\n", "telemetry": "acme,m1,x,1\n"}


@pytest.fixture
def cli(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """`servicecast …` on a migrated SQLite file where tenant acme has machines m1 and m2."""
    register_fleet(sqlite_engine, "acme", ["m1", "m2"])
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])


def _file(tmp_path, command: str, last: str):  # noqa: ANN001, ANN202
    header, good = FILES[command]
    path = tmp_path / f"{command}.csv"
    path.write_text(header + good + last)
    return path


@pytest.mark.parametrize("command", ["history", "machines"])
def test_a_dry_run_does_not_create_the_reject_file(cli, tmp_path, command):
    rejects = tmp_path / "rejects.csv"
    path = _file(tmp_path, command, BAD[command])
    done = cli(command, "import", path, "--dry-run", "--reject-file", rejects)
    assert done.exit_code == 0, done.output
    assert "1 rejected" in done.stdout
    assert not rejects.exists()


@pytest.mark.parametrize("command", ["history", "machines", "telemetry"])
def test_a_file_refused_whole_neither_creates_nor_changes_the_reject_file(cli, tmp_path, command):
    path = _file(tmp_path, command, 'acme,"m2\n')
    rejects, kept = tmp_path / "rejects.csv", tmp_path / "kept.csv"
    kept.write_text("the last import's rejects\n")
    for target in (rejects, kept):
        done = cli(command, "import", path, "--reject-file", target)
        assert done.exit_code == 1 and "a quoted field is never closed" in done.stderr, done.output
    assert not rejects.exists()
    assert kept.read_text() == "the last import's rejects\n"


@pytest.mark.parametrize("command", ["history", "machines", "telemetry"])
def test_a_reject_file_that_is_a_folder_or_a_link_to_the_imported_file_is_refused(cli, tmp_path, command):
    path = _file(tmp_path, command, BAD[command])
    body = path.read_text()
    done = cli(command, "import", path, "--reject-file", tmp_path)
    assert done.exit_code == 1 and f"cannot write {tmp_path}: Is a directory" in done.stderr, done.output
    link = tmp_path / "rejects.csv"
    link.symlink_to(path)
    done = cli(command, "import", path, "--reject-file", link)
    assert done.exit_code == 1 and "is the file being imported" in done.stderr, done.output
    assert path.read_text() == body


@pytest.mark.parametrize("command", ["history", "machines", "telemetry"])
def test_a_dangling_link_as_reject_file_gets_the_rejects_at_its_target(cli, tmp_path, command):
    target = tmp_path / "out" / "rejects.csv"
    target.parent.mkdir()
    link = tmp_path / "rejects.csv"
    link.symlink_to(target)
    done = cli(command, "import", _file(tmp_path, command, BAD[command]), "--reject-file", link)
    assert done.exit_code == 0, done.output
    assert target.read_text().startswith("line,reason,")
    assert link.is_symlink()


@pytest.mark.parametrize(
    ("command", "more"),
    [("history", ""), ("machines", ""), ("telemetry", " (see `servicecast quarantine list`)")],
)
def test_the_first_50_bad_rows_are_listed_by_line_and_the_rest_counted(cli, tmp_path, command, more):
    header, good = FILES[command]
    bad = {
        "history": "acme,m\x1b{n},2024-01-01T06:00:00Z,failure,pump\n",
        "machines": "acme,bad/{n}\n",
        "telemetry": "acme,m1,2024-01-01T06:{n:02}:00Z,n/a\n",
    }[command]
    reason = {
        "history": "machine id 'm\\x1b{n}' must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$",
        "machines": "machine id 'bad/{n}' must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$",
        "telemetry": "wrong_type: readings.temp must be a number, got str 'n/a'",
    }[command]
    path = tmp_path / f"{command}.csv"
    path.write_text(header + good + "".join(bad.format(n=n) for n in range(52)))
    done = cli(command, "import", path)
    listed = "".join(f"line {n + 3}: {reason.format(n=n)}\n" for n in range(50))
    assert done.stderr.startswith(listed + f"… and 2 more{more}\n"), done.stderr


@pytest.mark.parametrize("command", ["history", "machines", "telemetry"])
def test_a_reject_file_whose_name_cannot_be_looked_up_is_refused_in_one_line(cli, tmp_path, command):
    # A name too long fails stat(2) as a folder a non-root user cannot search does (EACCES): not "not there".
    rejects = tmp_path / ("x" * 300) / "rejects.csv"
    done = cli(command, "import", _file(tmp_path, command, BAD[command]), "--reject-file", rejects)
    assert done.exit_code == 1 and f"cannot write {rejects}: File name too long" in done.stderr, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)


@pytest.mark.parametrize("key", [("acme", "bad/id"), ("bad/t", "m1")])
@pytest.mark.parametrize("command", ["history", "machines", "telemetry"])
def test_a_bad_tenant_or_machine_id_has_registrations_words_in_every_import(cli, tmp_path, command, key):
    with pytest.raises(errors.InvalidInput) as refused:
        registration.check_key(*key)
    rows = {
        "history": "{},{},2024-01-01T06:00:00Z,failure,pump\n",
        "machines": "{},{}\n",
        "telemetry": "{},{},2024-01-01T06:00:00Z,1\n",
    }
    rejects = tmp_path / "rejects.csv"
    done = cli(
        command, "import", _file(tmp_path, command, rows[command].format(*key)), "--reject-file", rejects
    )
    assert done.exit_code == 0, done.output
    code = "bad_topic: " if command == "telemetry" else ""  # the quarantine's reason, as for each of its rows
    with open(rejects, newline="") as f:
        assert [(r["line"], r["reason"]) for r in csv.DictReader(f)] == [("3", f"{code}{refused.value}")]


@pytest.mark.parametrize("tenant", ["bad/t", "_lead", "t" * 65])
def test_customers_add_refuses_a_bad_tenant_id_in_the_imports_words(cli, tmp_path, tenant):
    rejects = tmp_path / "rejects.csv"
    done = cli("machines", "import", _file(tmp_path, "machines", f"{tenant},m9\n"), "--reject-file", rejects)
    assert done.exit_code == 0, done.output
    with open(rejects, newline="") as f:
        ((reason,),) = [[r["reason"]] for r in csv.DictReader(f)]

    added = cli("customers", "add", tenant)
    assert added.exit_code == 1 and added.output == f"servicecast: {reason}\n", added.output


@pytest.mark.parametrize("command", ["history", "machines", "telemetry"])
def test_a_row_with_more_fields_than_the_header_keeps_them_all_in_the_reject_file(cli, tmp_path, command):
    cells = {
        "history": ["acme", "m2", "2024-01-02T06:00:00Z", "failure", "pump", "valve", "seal"],
        "machines": ["acme", "m4", "pump"],
        "telemetry": ["acme", "m2", "2024-01-02T06:00:00Z", "1", "2"],
    }[command]
    rejects = tmp_path / "rejects.csv"
    done = cli(command, "import", _file(tmp_path, command, ",".join(cells) + "\n"), "--reject-file", rejects)
    assert done.exit_code == 0, done.output
    code = "bad_row: " if command == "telemetry" else ""
    with open(rejects, newline="") as f:
        assert list(csv.reader(f))[1:] == [["3", f"{code}more fields than the header has", *cells]]
