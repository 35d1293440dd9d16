"""Service history and machine imports on SQLite and PostgreSQL: idempotent, all-or-nothing, dry run."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, make_url, select
from typer.testing import CliRunner

from fleet import errors, history_import, labels, machine_import
from fleet.csv_import import ColumnMap, ImportRefused, load_map
from fleet.tables import Customer, DataUseGrant, Label, Machine
from servicecast.cli import app
from tests import services
from tests.ingest.support import register_fleet

# The shape of the Azure predictive-maintenance files (PdM_machines, PdM_failures, PdM_maint).
MACHINES = "machineID,model,age\n1,model3,18\n2,model4,7\n3,model3,8\n"
FAILURES = "datetime,machineID,failure\n2015-01-05 06:00:00,1,comp4\n2015-03-19 06:00:00,2,comp1\n"
FAILURES += "2015-03-19 06:00:00,2,comp2\n2015-02-06 06:00:00,3,comp1\n"
MAINT = "datetime,machineID,comp\n2014-06-01 06:00:00,1,comp2\n2015-01-05 06:00:00,1,comp4\n"
AZURE = """tenant = "azure"
age_at = "2015-01-01"

[columns]
ts = "datetime"
machine = "machineID"
machine_type = "model"
"""


def _gz(tmp_path, name: str, body: str):  # noqa: ANN202
    path = tmp_path / name
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write(body)
    return path


@pytest.fixture
def azure(tmp_path, engine):  # noqa: ANN201
    """The machines registered from a PdM_machines-shaped file; returns the mapping of that data set."""
    (tmp_path / "azure.toml").write_text(AZURE)
    cmap = load_map(tmp_path / "azure.toml")
    report = machine_import.import_machines(
        engine=engine,
        path=_gz(tmp_path, "PdM_machines.csv.gz", MACHINES),
        mapping=cmap,
        purposes=["product_improvement"],
    )
    assert (report.rows, report.new, report.existing, report.written) == (3, 3, 0, True)
    return cmap


def _count(engine, table) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(table))


def test_azure_shaped_files_import_through_a_mapping_and_a_second_import_adds_nothing(
    tmp_path, engine, azure
):
    with engine.connect() as conn:
        rows = conn.execute(
            select(Machine.code, Machine.machine_type, Machine.installed).order_by(Machine.code)
        )
        assert rows.all() == [
            ("1", "model3", date(1997, 1, 1)),
            ("2", "model4", date(2008, 1, 1)),
            ("3", "model3", date(2007, 1, 1)),
        ]
        grants = conn.execute(select(DataUseGrant.purpose).join(Customer).where(Customer.tenant == "azure"))
        assert sorted(g for (g,) in grants) == ["product_improvement", "service"]
    failures = _gz(tmp_path, "PdM_failures.csv.gz", FAILURES)
    fmap = azure.merged(kind="failure", columns={"component": "failure"})
    mmap = azure.merged(kind="maintenance", columns={"component": "comp"})
    first = history_import.import_history(engine=engine, path=failures, mapping=fmap)
    maint = history_import.import_history(
        engine=engine, path=_gz(tmp_path, "PdM_maint.csv.gz", MAINT), mapping=mmap
    )
    assert (first.new, first.existing, maint.new) == (4, 0, 2)
    again = history_import.import_history(engine=engine, path=failures, mapping=fmap)
    assert (again.rows, again.new, again.existing, again.written) == (4, 0, 4, True)
    with engine.connect() as conn:
        stored = labels.read(conn)
    assert len(stored) == 6 and set(stored["source"]) == {"import"}
    first_failure = stored[stored["kind"] == "failure"].iloc[0]
    assert first_failure["ts"] == datetime(2015, 1, 5, 6, tzinfo=UTC)
    assert (first_failure["machine"], first_failure["component"], first_failure["ref"]) == (
        "1",
        "comp4",
        "PdM_failures.csv.gz:2",
    )
    # A failure and the replacement after it share machine, time and component: two labels, not a clash.
    assert (
        len(stored[(stored["machine"] == "1") & (stored["ts"] == datetime(2015, 1, 5, 6, tzinfo=UTC))]) == 2
    )
    again = machine_import.import_machines(
        engine=engine, path=tmp_path / "PdM_machines.csv.gz", mapping=azure
    )
    assert (again.new, again.existing) == (0, 3)


BAD = """tenant,machine,ts,kind,component
acme,1,2026-01-03T06:00:00Z,failure,pump
acme,1,yesterday,failure,pump
acme,9,2026-01-04T06:00:00Z,failure,pump
acme,1,2026-01-05T06:00:00Z,breakdown,pump
acme,1,2026-01-06T06:00:00+01:00,maintenance,
acme,1,2026-01-06T05:00:00Z,maintenance,
"""
REASONS = [
    (3, "time 'yesterday' is not ISO 8601, e.g. 2015-01-05 06:00:00"),
    (4, "machine acme/9 is not registered (servicecast machines import)"),
    (
        5,
        "kind 'breakdown' is not one of failure, replacement, maintenance, no_fault, visit "
        "(map the file's values under [kinds])",
    ),
    (7, "same machine, time, kind and component as line 6"),
]


@pytest.fixture
def acme(tmp_path, engine) -> None:
    (tmp_path / "m.csv").write_text("tenant,machine,machine_type,installed\nacme,1,pump,2020-05-01\n")
    machine_import.import_machines(engine=engine, path=tmp_path / "m.csv", mapping=ColumnMap())


def test_a_file_with_bad_rows_is_refused_whole_with_every_line_and_reason(tmp_path, engine, acme):
    (tmp_path / "bad.csv").write_text(BAD)
    with pytest.raises(ImportRefused) as refused:
        history_import.import_history(engine=engine, path=tmp_path / "bad.csv", mapping=ColumnMap())
    assert [(r.line, r.reason) for r in refused.value.report.rejects] == REASONS
    assert "line 3: time 'yesterday'" in str(refused.value) and "nothing imported" in str(refused.value)
    assert _count(engine, Label) == 0


def test_with_a_reject_file_the_good_rows_go_in_and_the_bad_ones_to_the_file(tmp_path, engine, acme):
    (tmp_path / "bad.csv").write_text(BAD)
    rejects = tmp_path / "rejects.csv"
    report = history_import.import_history(
        engine=engine, path=tmp_path / "bad.csv", mapping=ColumnMap(), reject_file=rejects
    )
    assert (report.rows, report.new, len(report.rejects), report.written) == (6, 2, 4, True)
    with open(rejects, newline="") as f:
        lines = list(csv.DictReader(f))
    assert [(int(r["line"]), r["reason"]) for r in lines] == REASONS
    assert lines[0]["ts"] == "yesterday" and lines[1]["machine"] == "9"
    with engine.connect() as conn:
        stored = labels.read(conn)
    assert list(stored["kind"]) == ["failure", "maintenance"] and list(stored["component"]) == ["pump", ""]


def test_a_dry_run_counts_and_writes_nothing(tmp_path, engine, acme):
    (tmp_path / "h.csv").write_text(BAD.splitlines()[0] + "\n" + BAD.splitlines()[1] + "\n")
    dry = history_import.import_history(
        engine=engine, path=tmp_path / "h.csv", mapping=ColumnMap(), dry_run=True
    )
    assert (dry.rows, dry.new, dry.existing, dry.written) == (1, 1, 0, False)
    assert _count(engine, Label) == 0
    (tmp_path / "m.csv").write_text("tenant,machine\nacme,1\nnewco,7\n")
    dry = machine_import.import_machines(
        engine=engine, path=tmp_path / "m.csv", mapping=ColumnMap(), dry_run=True
    )
    assert (dry.new, dry.existing, dry.written) == (1, 1, False)
    assert _count(engine, Machine) == 1 and _count(engine, Customer) == 1


def test_kinds_tenant_and_time_format_come_from_a_mapping_file(tmp_path, engine, acme):
    (tmp_path / "erp.toml").write_text(
        'tenant = "acme"\ntime_format = "%d.%m.%Y %H:%M"\ntimezone = "Europe/Berlin"\ndelimiter = ";"\n'
        '[columns]\nts = "Datum"\nmachine = "Anlage"\nkind = "Art"\ncomponent = "Teil"\n'
        '[kinds]\nAusfall = "failure"\n"Teiletausch" = "replacement"\n'
    )
    (tmp_path / "erp.csv").write_text(
        "Datum;Anlage;Art;Teil\n05.01.2026 07:30;1;Ausfall;Lager\n06.01.2026 08:00;1;Teiletausch;Dichtung\n"
    )
    report = history_import.import_history(
        engine=engine, path=tmp_path / "erp.csv", mapping=load_map(tmp_path / "erp.toml")
    )
    assert report.new == 2
    with engine.connect() as conn:
        stored = labels.read(conn)
    assert list(stored["ts"]) == [
        datetime(2026, 1, 5, 6, 30, tzinfo=UTC),
        datetime(2026, 1, 6, 7, tzinfo=UTC),
    ]
    assert list(stored["kind"]) == ["failure", "replacement"]


def test_a_missing_column_refuses_the_file_before_any_row(tmp_path, engine, acme):
    (tmp_path / "h.csv").write_text("when,machine,kind\n2026-01-01,1,failure\n")
    with pytest.raises(Exception, match=r"no column 'ts' \(ts\)"):
        history_import.import_history(
            engine=engine, path=tmp_path / "h.csv", mapping=ColumnMap(tenant="acme")
        )


def test_a_wrong_kind_for_the_whole_file_is_refused_once_before_any_row(tmp_path, engine, acme):
    (tmp_path / "h.csv").write_text("ts,machine\n2026-01-01T06:00:00Z,1\n2026-01-02T06:00:00Z,1\n")
    with pytest.raises(errors.InvalidInput, match=r"^--kind 'breakdown' is not one of failure, "):
        history_import.import_history(
            engine=engine, path=tmp_path / "h.csv", mapping=ColumnMap(tenant="acme", kind="breakdown")
        )
    assert _count(engine, Label) == 0


def test_the_cli_imports_machines_and_history_and_refuses_a_bad_file_with_its_lines(
    tmp_path, database_url, engine, monkeypatch
):
    from typer.testing import CliRunner

    from servicecast.cli import app

    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    runner = CliRunner()
    machines = _gz(tmp_path, "PdM_machines.csv.gz", MACHINES)
    failures = _gz(tmp_path, "PdM_failures.csv.gz", FAILURES)
    azure = ["--tenant", "azure", "--column", "machine=machineID"]
    result = runner.invoke(
        app,
        ["machines", "import", str(machines), *azure, "--column", "machine_type=model", "--column", "age=age"]
        + ["--age-at", "2015-01-01", "--purpose", "product_improvement"],
    )
    assert result.exit_code == 0, result.output
    assert "3 rows: imported 3 new machines, 0 stored already, 0 rejected" in result.output
    history = ["history", "import", str(failures), *azure, "--column", "ts=datetime"]
    history += ["--column", "component=failure", "--kind", "failure"]
    dry = runner.invoke(app, [*history, "--dry-run"])
    assert "4 rows: would import (dry run) 4 new labels" in dry.output and _count(engine, Label) == 0
    assert runner.invoke(app, history).exit_code == 0 and _count(engine, Label) == 4
    (tmp_path / "bad.csv").write_text(
        "datetime,machineID,failure\n2015-01-05 06:00:00,1,comp4\nnever,1,comp1\n"
    )
    bad = runner.invoke(app, [*history[:2], str(tmp_path / "bad.csv"), *history[3:]])
    assert bad.exit_code == 1
    assert "line 3: time 'never' is not ISO 8601" in bad.output
    assert "1 bad row: nothing imported" in bad.output
    assert _count(engine, Label) == 4


def test_a_machines_file_with_bad_rows_is_refused_whole_or_imported_without_them(tmp_path, engine):
    (tmp_path / "m.csv").write_text(
        "tenant,machine,machine_type,installed\nacme,1,pump,2020-05-01\nacme,bad/id,pump,\n"
        "acme,2,pump,spring\nacme,1,pump,\n"
    )
    reasons = [
        (3, "machine id 'bad/id' must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
        (4, "installed 'spring' is not a date (YYYY-MM-DD)"),
        (5, "same tenant and machine as line 2"),
    ]
    with pytest.raises(ImportRefused) as refused:
        machine_import.import_machines(engine=engine, path=tmp_path / "m.csv", mapping=ColumnMap())
    assert [(r.line, r.reason) for r in refused.value.report.rejects] == reasons
    assert _count(engine, Machine) == 0 and _count(engine, Customer) == 0
    report = machine_import.import_machines(
        engine=engine, path=tmp_path / "m.csv", mapping=ColumnMap(), reject_file=tmp_path / "r.csv"
    )
    assert (report.new, len(report.rejects)) == (1, 3) and _count(engine, Machine) == 1
    with open(tmp_path / "r.csv", newline="") as f:
        assert [(int(r["line"]), r["reason"]) for r in csv.DictReader(f)] == reasons


def test_a_purpose_nobody_grants_refuses_the_machines_file_in_a_dry_run_as_in_the_import(
    tmp_path, database_url, engine, monkeypatch
):
    from typer.testing import CliRunner

    from servicecast.cli import app

    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    (tmp_path / "m.csv").write_text("tenant,machine,machine_type\nacme,1,pump\n")
    command = ["machines", "import", str(tmp_path / "m.csv"), "--purpose", "sales"]
    for dry in (["--dry-run"], []):
        result = CliRunner().invoke(app, command + dry)
        assert result.exit_code == 1, result.output
        assert "purpose must be one of service, offers, product_improvement, not 'sales'" in result.stderr
        assert "would import" not in result.output
    assert _count(engine, Machine) == 0 and _count(engine, Customer) == 0


def test_a_machines_import_names_the_machine_types_not_defined_yet(
    tmp_path, database_url, engine, monkeypatch
):
    from typer.testing import CliRunner

    from servicecast.cli import app

    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    (tmp_path / "types.yaml").write_text(
        "machine_types:\n  - {name: pump, sensors: [{name: t, unit: C}]}\n", encoding="utf-8"
    )
    assert CliRunner().invoke(app, ["types", "apply", str(tmp_path / "types.yaml")]).exit_code == 0
    (tmp_path / "m.csv").write_text("tenant,machine,machine_type\nacme,1,pump\nacme,2,pmup\nacme,3,pmup\n")
    for dry in (["--dry-run"], []):
        result = CliRunner().invoke(app, ["machines", "import", str(tmp_path / "m.csv"), *dry])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[1:] == [
            "note: machine type 'pmup' (2 machines) is not defined yet: servicecast types apply FILE gives "
            "its sensors' names, units and limits"
        ]
    assert _count(engine, Machine) == 3


def test_a_machine_type_no_types_file_can_define_is_a_bad_row(tmp_path, engine):
    (tmp_path / "m.csv").write_text("tenant,machine,machine_type\nacme,1,CP 200\nacme,2,cp-200\n")
    with pytest.raises(ImportRefused) as refused:
        machine_import.import_machines(engine=engine, path=tmp_path / "m.csv", mapping=ColumnMap())
    assert [(r.line, r.reason) for r in refused.value.report.rejects] == [
        (
            2,
            "machine_type 'CP 200' is not a name (letters, digits, _ . -; starting with a letter): "
            "no types file can define it",
        )
    ]
    assert _count(engine, Machine) == 0


def test_machines_add_refuses_a_type_no_types_file_can_define(tmp_path, database_url, engine, monkeypatch):
    from typer.testing import CliRunner

    from servicecast.cli import app

    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["customers", "add", "acme"]).exit_code == 0
    result = runner.invoke(app, ["machines", "add", "acme", "1", "--type", "CP 200"])
    assert result.exit_code == 1
    refused = "machine type 'CP 200' is not a name (letters, digits, _ . -; starting with a letter)"
    assert refused in result.stderr
    assert _count(engine, Machine) == 0


@pytest.mark.parametrize("command", ["history", "machines"])
def test_a_database_refusing_the_write_ends_the_import_with_one_line(postgres_url, tmp_path, command):
    with services.migrated_engine(postgres_url) as engine:
        register_fleet(engine, "acme", ["m1"])
        path = tmp_path / "f.csv"
        path.write_text(
            "machine,ts,kind,component\nm1,2015-01-05T06:00:00Z,failure,pump\n"
            if command == "history"
            else "machine\nm2\n"
        )
        database = make_url(postgres_url).database
        with engine.begin() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        env = {"SERVICECAST_DATABASE_URL": postgres_url}
        done = CliRunner().invoke(app, [command, "import", str(path), "--tenant", "acme"], env=env)
    assert done.exit_code == 1, done.output
    assert "cannot import into the database SERVICECAST_DATABASE_URL=" in done.stderr
    assert "read-only transaction; nothing of the file is stored; import it again" in done.stderr


@pytest.mark.parametrize("command", ["history", "machines"])
def test_a_database_refusing_the_write_leaves_the_reject_file_as_it_was(postgres_url, tmp_path, command):
    rejects = tmp_path / "rejects.csv"
    rejects.write_text("the last import's rejects\n")
    with services.migrated_engine(postgres_url) as engine:
        register_fleet(engine, "acme", ["m1"])
        path = tmp_path / "h.csv"
        if command == "history":
            rows = [f"{machine},2015-01-05T06:00:00Z,failure,pump" for machine in ("m1", "m9")]
            path.write_text("\n".join(["machine,ts,kind,component", *rows]) + "\n")
        else:
            path.write_text("machine\nm2\nbad/id\n")
        database = make_url(postgres_url).database
        with engine.begin() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        args = [command, "import", str(path), "--tenant", "acme", "--reject-file", str(rejects)]
        done = CliRunner().invoke(app, args, env={"SERVICECAST_DATABASE_URL": postgres_url})
    assert done.exit_code == 1, done.output
    assert "read-only transaction; nothing of the file is stored; import it again" in done.stderr
    assert rejects.read_text() == "the last import's rejects\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.csv", "rejects.csv"]  # no temporary file left


def _many_bad_rows(tmp_path) -> tuple[Path, list[tuple[int, str]]]:  # noqa: ANN001
    """A file of 60 good rows of machine m1 and 120 bad ones among them, and the bad rows' lines and reasons:
    by turns a time that is none (found in the import's first read) and a machine not registered (second)."""
    rows, bad = ["machine,ts,kind,component"], []
    for i in range(180):
        if i % 3 == 0:
            rows.append(f"m1,2020-01-01T{i // 3 // 60:02}:{i // 3 % 60:02}:00Z,failure,pump")
        elif i % 3 == 1:
            rows.append("m1,never,failure,pump")
            bad.append((i + 2, "time 'never' is not ISO 8601, e.g. 2015-01-05 06:00:00"))
        else:
            rows.append("m9,2020-01-01T06:00:00Z,failure,pump")
            bad.append((i + 2, "machine acme/m9 is not registered (servicecast machines import)"))
    path = tmp_path / "h.csv"
    path.write_text("\n".join(rows) + "\n")
    return path, bad


def test_many_bad_rows_refuse_the_file_whole_keeping_the_first_50_or_go_to_the_reject_file_in_line_order(
    tmp_path, engine
):
    register_fleet(engine, "acme", ["m1"])
    path, bad = _many_bad_rows(tmp_path)
    acme = ColumnMap(tenant="acme")
    with pytest.raises(ImportRefused) as refused:  # batches of 10 good rows written before: rolled back
        history_import.import_history(engine=engine, path=path, mapping=acme, batch_size=10)
    report = refused.value.report
    assert (report.rows, report.rejected, report.written) == (180, 120, False)
    assert [(r.line, r.reason) for r in report.rejects] == bad[:50]
    assert "120 bad rows, nothing imported: line 3: time 'never'" in str(refused.value)
    assert str(refused.value).endswith("; and 100 more")
    assert _count(engine, Label) == 0

    rejects = tmp_path / "rejects.csv"
    dry = history_import.import_history(
        engine=engine, path=path, mapping=acme, batch_size=10, dry_run=True, reject_file=rejects
    )
    assert (dry.rows, dry.new, dry.rejected, dry.written) == (180, 60, 120, False)
    assert not rejects.exists() and _count(engine, Label) == 0

    report = history_import.import_history(
        engine=engine, path=path, mapping=acme, batch_size=10, reject_file=rejects
    )
    assert (report.rows, report.new, report.rejected, report.written) == (180, 60, 120, True)
    with open(rejects, newline="") as f:
        assert [(int(r["line"]), r["reason"]) for r in csv.DictReader(f)] == bad
    assert _count(engine, Label) == 60


def _many_bad_machines(folder: Path) -> tuple[Path, list[tuple[int, str]]]:
    """A machines file of 60 good rows and 120 bad ones among them, and the bad rows' lines and reasons: by
    turns a commissioning date that is none and the machine of the row before it again."""
    rows, bad = ["machine,installed"], []
    for i in range(180):
        if i % 3 == 0:
            rows.append(f"m{i},2020-01-01")
        elif i % 3 == 1:
            rows.append(f"m{i},never")
            bad.append((i + 2, "installed 'never' is not a date (YYYY-MM-DD)"))
        else:
            rows.append(f"m{i - 2},2021-01-01")
            bad.append((i + 2, f"same tenant and machine as line {i}"))
    path = folder / "m.csv"
    path.write_text("\n".join(rows) + "\n")
    return path, bad


def test_many_bad_machine_rows_refuse_the_file_whole_keeping_the_first_50_or_go_to_the_reject_file_in_order(
    tmp_path, engine
):
    folder = tmp_path / "import"  # of the files alone (the SQLite database is beside it)
    folder.mkdir()
    path, bad = _many_bad_machines(folder)
    acme = ColumnMap(tenant="acme")
    with pytest.raises(ImportRefused) as refused:
        machine_import.import_machines(engine=engine, path=path, mapping=acme)
    report = refused.value.report
    assert (report.rows, report.rejected, report.written) == (180, 120, False)
    assert [(r.line, r.reason) for r in report.rejects] == bad[:50]
    assert "120 bad rows, nothing imported: line 3: installed 'never'" in str(refused.value)
    assert str(refused.value).endswith("; and 100 more")
    assert _count(engine, Machine) == 0 and _count(engine, Customer) == 0

    rejects = folder / "rejects.csv"
    dry = machine_import.import_machines(
        engine=engine, path=path, mapping=acme, dry_run=True, reject_file=rejects
    )
    assert (dry.rows, dry.new, dry.rejected, dry.written) == (180, 60, 120, False)
    assert not rejects.exists() and _count(engine, Machine) == 0

    report = machine_import.import_machines(engine=engine, path=path, mapping=acme, reject_file=rejects)
    assert (report.rows, report.new, report.rejected, report.written) == (180, 60, 120, True)
    with open(rejects, newline="") as f:
        written = list(csv.DictReader(f))
    assert [(int(r["line"]), r["reason"]) for r in written] == bad
    assert written[-1] == {
        "line": "181",
        "reason": "same tenant and machine as line 179",
        "machine": "m177",
        "installed": "2021-01-01",
    }
    assert sorted(p.name for p in folder.iterdir()) == ["m.csv", "rejects.csv"]  # no temporary file left
    assert _count(engine, Machine) == 60


def test_a_reason_quoting_a_files_text_reaches_the_terminal_without_its_control_characters(
    tmp_path, database_url, engine
):
    register_fleet(engine, "acme", ["m1"])
    path = tmp_path / "h.csv"
    path.write_text(
        "machine,ts,kind,component\n\x1b]0;owned\x07m9\x1b[2J,2015-01-05T06:00:00Z,failure,pump\n"
    )
    env = {"SERVICECAST_DATABASE_URL": database_url}
    done = CliRunner().invoke(app, ["history", "import", str(path), "--tenant", "acme"], env=env)
    assert done.exit_code == 1
    assert "line 2: machine id '\\x1b]0;owned\\x07m9\\x1b[2J' must match" in done.stderr
    assert "\x1b" not in done.output and "\x07" not in done.output


def test_an_age_written_with_an_underscore_is_a_bad_row_not_a_number_python_would_read(tmp_path, engine):
    path = tmp_path / "m.csv"
    path.write_text("machine,age\nm1,1_5\nm2,1.5\n")
    with pytest.raises(ImportRefused) as refused:
        machine_import.import_machines(engine=engine, path=path, mapping=ColumnMap(tenant="acme"))
    assert [(r.line, r.reason) for r in refused.value.report.rejects] == [
        (2, "age '1_5' is not a number of years")
    ]
