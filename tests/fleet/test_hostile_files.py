"""Hostile files through the import CLIs: every bad file or row is a line and a reason, never a traceback."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from api import catalog
from fleet import type_checks
from fleet.tables import Label, Machine, MachineTypeVersion, Quarantine, Telemetry
from servicecast.cli import app
from tests import services
from tests.ingest.support import register_fleet

HISTORY_HEADER = "tenant,machine,ts,kind,component\n"
GOOD_LABEL = "acme,m1,2024-01-01T06:00:00Z,failure,pump\n"
# Ten times as many values at each level: 10^9 once the aliases are expanded, 100 lines of text.
BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}' if prev else 'x'] * 10)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)


@pytest.fixture
def cli(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """`servicecast …` on a migrated SQLite file where tenant acme has machines m1 and m2."""
    register_fleet(sqlite_engine, "acme", ["m1", "m2"])
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])


def refused(result, *texts: str) -> None:  # noqa: ANN001
    """The command exited 1 with one clear message containing `texts`, not with an exception."""
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
    for text in texts:
        assert text in result.stderr, result.stderr


def count(engine: Engine, table) -> int:  # noqa: ANN001
    """Rows of `table`."""
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(table))


def write(tmp_path: Path, name: str, body: str | bytes) -> Path:
    """A file of exactly these bytes (text as UTF-8, line ends as given)."""
    path = tmp_path / name
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize(
    ("rows", "reasons"),
    [
        (
            "acme,m1,0001-01-01T00:00:00+05:00,failure,pump\nacme,m1,9999-12-31T23:00:00-05:00,failure,pump\n",
            [
                "line 3: time '0001-01-01T00:00:00+05:00' is out of range",
                "line 4: time '9999-12-31T23:00:00-05:00' is out",
            ],
        ),
        (  # planned visits, or a placeholder date
            "acme,m1,2124-01-01T06:00:00Z,maintenance,pump\nacme,m1,9999-12-31T23:59:59,failure,pump\n",
            [
                "line 3: time '2124-01-01T06:00:00Z' is in the future",
                "line 4: time '9999-12-31T23:59:59' is in the",
            ],
        ),
    ],
)
def test_a_history_time_beyond_the_calendar_in_utc_or_in_the_future_is_a_bad_row(
    cli, sqlite_engine, tmp_path, rows, reasons
):
    history = write(tmp_path, "history.csv", HISTORY_HEADER + GOOD_LABEL + rows)
    refused(cli("history", "import", history), *reasons)
    assert count(sqlite_engine, Label) == 0


def test_a_telemetry_time_beyond_year_1_in_utc_is_a_bad_row(cli, tmp_path):
    telemetry = write(tmp_path, "t.csv", "tenant,machine,ts,temp\nacme,m1,0001-01-01T00:00+05:00,1\n")
    result = cli("telemetry", "import", telemetry)
    assert result.exit_code == 0, result.output
    assert "line 2: bad_timestamp: time '0001-01-01T00:00+05:00' is out of range" in result.stderr


def test_a_reject_file_that_cannot_be_written_is_an_error_before_anything_is_stored(
    cli, sqlite_engine, tmp_path
):
    history = write(tmp_path, "history.csv", HISTORY_HEADER + GOOD_LABEL + "acme,zz,2024-01-01,failure,p\n")
    nowhere = tmp_path / "no such folder" / "rejects.csv"
    refused(cli("history", "import", history, "--reject-file", nowhere), f"cannot write {nowhere}")
    assert count(sqlite_engine, Label) == 0

    machines = write(tmp_path, "machines.csv", "tenant,machine\nacme,m3\nacme,bad/id\n")
    refused(cli("machines", "import", machines, "--reject-file", nowhere), f"cannot write {nowhere}")
    assert count(sqlite_engine, Machine) == 2

    telemetry = write(tmp_path, "t.csv", "tenant,machine,ts,temp\nacme,m1,2024-01-01T06:00Z,x\n")
    refused(cli("telemetry", "import", telemetry, "--reject-file", nowhere), f"cannot write {nowhere}")
    assert count(sqlite_engine, Telemetry) == 0


def test_a_cell_longer_than_the_csv_modules_field_limit_is_a_bad_row(cli, sqlite_engine, tmp_path):
    long = "x" * 200_000
    history = write(
        tmp_path, "history.csv", HISTORY_HEADER + GOOD_LABEL + f"acme,m1,2024-01-02,failure,{long}\n"
    )
    refused(cli("history", "import", history), "line 3: component longer than 64 characters")

    telemetry = (
        "tenant,machine,ts,temp\nacme,m1,2024-01-01T06:00Z,1\nacme,m1,2024-01-01T07:00Z," + long + "\n"
    )
    result = cli("telemetry", "import", write(tmp_path, "t.csv", telemetry))
    assert result.exit_code == 0, result.output
    assert "2 rows: imported 1 new message, 0 stored already, 1 rejected" in result.stdout
    assert "line 3: " in result.stderr


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('acme,m1,2024-01-02,failure,"pump\n', "line 3: a quoted field is never closed"),
        ('acme,m1,2024-01-02,failure,"pu"mp\n', "line 3: "),
    ],
)
def test_broken_quoting_refuses_the_file_by_line_before_anything_is_stored(
    cli, sqlite_engine, tmp_path, bad, reason
):
    body = HISTORY_HEADER + GOOD_LABEL + bad + "acme,m2,2024-01-03,failure,pump\n"
    refused(cli("history", "import", write(tmp_path, "history.csv", body)), reason)
    assert count(sqlite_engine, Label) == 0

    telemetry = "tenant,machine,ts,temp\nacme,m1,2024-01-01T06:00Z,1\n" + bad.replace("failure,", "")
    refused(cli("telemetry", "import", write(tmp_path, "t.csv", telemetry)), reason)
    assert count(sqlite_engine, Telemetry) == 0


@pytest.mark.parametrize("delimiter", [";;", '"', ""])
def test_a_delimiter_that_is_not_one_plain_character_is_refused(cli, tmp_path, delimiter):
    history = write(tmp_path, "history.csv", HISTORY_HEADER + GOOD_LABEL)
    refused(cli("history", "import", history, "--delimiter", delimiter), f"delimiter {delimiter!r}")


def test_a_column_named_twice_in_the_header_refuses_the_file(cli, sqlite_engine, tmp_path):
    history = write(
        tmp_path, "h.csv", "tenant,machine,ts,kind,component,component\nacme,m1,2024-01-01,failure,a,b\n"
    )
    refused(cli("history", "import", history), "column 'component' is in the header twice")
    telemetry = write(tmp_path, "t.csv", "tenant,machine,ts,temp,temp\nacme,m1,2024-01-01T06:00Z,1,2\n")
    refused(cli("telemetry", "import", telemetry), "column 'temp' is in the header twice")
    assert count(sqlite_engine, Label) == count(sqlite_engine, Telemetry) == 0


def test_a_telemetry_row_with_more_or_fewer_fields_than_the_header_is_rejected_not_shifted(
    cli, sqlite_engine, tmp_path
):
    body = "tenant,machine,ts,temp,pressure\n"
    body += "acme,m1,2024-01-01T06:00Z,1.5,2.0\n"
    body += "acme,m1,2024-01-01T07:00Z,1,5,2,0\n"  # decimal commas: six values for two readings
    body += "acme,m1,2024-01-01T08:00Z,3.5\n"
    body += "acme,m1,2024-01-01T09:00Z,4.5,5.0"  # the last line ends without a newline
    result = cli("telemetry", "import", write(tmp_path, "t.csv", body))
    assert result.exit_code == 0, result.output
    assert "4 rows: imported 2 new messages, 0 stored already, 2 rejected" in result.stdout
    assert "line 3: bad_row: more fields than the header has" in result.stderr
    assert "line 4: bad_row: fewer fields than the header has" in result.stderr
    with sqlite_engine.connect() as conn:
        stored = [r for (r,) in conn.execute(select(Telemetry.readings).order_by(Telemetry.ts))]
    assert stored == [{"temp": 1.5, "pressure": 2.0}, {"temp": 4.5, "pressure": 5.0}]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("tenant,machine\nacme,m3\nacme,M\xfcnchen\n".encode("latin-1"), "line 3: not UTF-8"),
        ("tenant,machine\nacme,m3\n".encode("utf-16"), "line 1: not UTF-8"),
    ],
)
def test_a_csv_file_that_is_not_utf8_is_refused_with_its_line(cli, sqlite_engine, tmp_path, body, reason):
    refused(cli("machines", "import", write(tmp_path, "machines.csv", body)), reason)
    assert count(sqlite_engine, Machine) == 2


def test_a_types_file_that_is_not_utf8_is_refused_with_its_line(cli, tmp_path):
    body = "machine_types:\n  - name: t\n    sensors: [{name: s, unit: \xb0C}]\n".encode("latin-1")
    refused(cli("types", "apply", write(tmp_path, "types.yaml", body)), "types.yaml:3: file: not UTF-8")


def test_a_toml_types_file_with_a_byte_order_mark_is_read(cli, sqlite_engine, tmp_path):
    body = '\ufeff[[machine_types]]\nname = "press"\nsensors = [{name = "s", unit = "bar"}]\n'
    result = cli("types", "apply", write(tmp_path, "types.toml", body))
    assert result.exit_code == 0, result.output
    assert count(sqlite_engine, MachineTypeVersion) == 1


@pytest.mark.parametrize("command", [("types", "apply"), ("catalog", "add")])
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            BOMB + "machine_types: [*i]\n",
            "bomb.yaml:5: file: aliases repeat more than 100,000 values",
        ),
        ("machine_types: &a [*a]\n", "bomb.yaml:1: file: an alias refers to a node that contains it"),
        (
            "machine_types: " + "[" * 40 + "]" * 40 + "\n",
            "bomb.yaml:1: file: nested more than 32 levels deep",
        ),
        (
            "machine_types: " + "[" * 5000 + "]" * 5000 + "\n",
            "bomb.yaml: file: nested more than 32 levels deep",
        ),
        (
            'machine_types:\n  - name: t\n    unit: "x\x00"\n',
            "bomb.yaml:3: file: not valid YAML: character '\\x00'",
        ),
    ],
)
def test_a_yaml_bomb_is_refused_by_its_line_without_expanding_it(cli, tmp_path, command, body, problem):
    refused(cli(*command, write(tmp_path, "bomb.yaml", body)), problem)


@pytest.fixture
def pg_cli(postgres_url: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """`servicecast …` on a migrated PostgreSQL database where tenant acme has machines m1 and m2."""
    with services.migrated_engine(postgres_url) as engine:
        register_fleet(engine, "acme", ["m1", "m2"])
        monkeypatch.setenv("SERVICECAST_DATABASE_URL", postgres_url)
        yield engine, lambda *args: CliRunner().invoke(app, [str(a) for a in args])


def test_a_nul_character_in_text_is_a_bad_row_on_postgresql(pg_cli, tmp_path):
    engine, cli = pg_cli
    history = write(
        tmp_path, "history.csv", HISTORY_HEADER + GOOD_LABEL + "acme,m1,2024-01-02,failure,pu\x00mp\n"
    )
    refused(cli("history", "import", history), "line 3: ")
    machines = write(tmp_path, "machines.csv", "tenant,machine,site\nacme,m3,Hall 1\nacme,m4,Hall\x002\n")
    refused(cli("machines", "import", machines), "line 3: ")
    events = write(
        tmp_path, "events.csv", "tenant,machine,ts,code,text\nacme,m1,2024-01-01T06:00Z,E1,hot\x00\n"
    )
    result = cli("telemetry", "import", events, "--kind", "events")
    assert result.exit_code == 0 and "line 2: " in result.stderr, result.output
    assert count(engine, Label) == 0 and count(engine, Machine) == 2


def test_a_value_longer_than_its_postgresql_column_is_a_bad_row_and_a_long_file_name_is_stored(
    pg_cli, tmp_path
):
    engine, cli = pg_cli
    tier = "t" * 40
    machines = write(
        tmp_path, "machines.csv", f"tenant,machine,contract_tier\nacme,m3,gold\nacme,m4,{tier}\n"
    )
    refused(cli("machines", "import", machines), "line 3: contract_tier longer than 32 characters")
    assert count(engine, Machine) == 2

    long_name = write(tmp_path, "n" * 230 + ".csv", "tenant,machine\nbeta,m1\n")  # a new customer: grants
    result = cli("machines", "import", long_name)
    assert result.exit_code == 0, result.output
    assert count(engine, Machine) == 3


def test_a_parquet_file_corrupt_after_its_first_row_groups_is_refused_before_anything_is_stored(
    cli, sqlite_engine, tmp_path
):
    import pyarrow as pa
    from pyarrow import parquet

    path = tmp_path / "telemetry.parquet"
    ts = pa.array([f"2024-01-01T00:{m:02d}:00Z" for m in range(40)])
    parquet.write_table(
        pa.table({"tenant": ["acme"] * 40, "machine": ["m1"] * 40, "ts": ts, "temp": [1.5] * 40}),
        path,
        row_group_size=10,
    )
    raw = bytearray(path.read_bytes())
    start = parquet.ParquetFile(path).metadata.row_group(3).column(3).data_page_offset
    raw[start : start + 16] = b"\x55" * 16  # the last row group's page header
    path.write_bytes(bytes(raw))
    refused(cli("telemetry", "import", path, "--batch-size", 10), f"cannot read {path} as Parquet")
    assert count(sqlite_engine, Telemetry) == 0


def test_local_times_the_clocks_pass_twice_keep_both_hours_and_a_time_they_skip_is_a_bad_row(
    cli, sqlite_engine, tmp_path
):
    body = "tenant,machine,ts,temp\n"
    for n, local in enumerate(["01:30", "02:00", "02:30", "02:00", "02:30", "03:00"]):
        body += f"acme,m1,2024-10-27 {local},{n}\n"  # Berlin's clocks go back at 03:00 CEST to 02:00 CET
    body += "acme,m2,2024-03-31 02:30,9\n"  # and forward at 02:00 CET to 03:00 CEST
    result = cli("telemetry", "import", write(tmp_path, "t.csv", body), "--timezone", "Europe/Berlin")
    assert result.exit_code == 0, result.output
    assert "7 rows: imported 6 new messages, 0 stored already, 1 rejected" in result.stdout
    assert "line 8: bad_timestamp: time '2024-03-31 02:30' does not exist in Europe/Berlin" in result.stderr
    with sqlite_engine.connect() as conn:
        stored = conn.execute(select(Telemetry.ts, Telemetry.readings).order_by(Telemetry.ts)).all()
    assert [(f"{ts:%H:%M}", r["temp"]) for ts, r in stored] == [
        ("23:30", 0.0),
        ("00:00", 1.0),
        ("00:30", 2.0),
        ("01:00", 3.0),
        ("01:30", 4.0),
        ("02:00", 5.0),
    ]


def test_a_large_file_without_aliases_and_one_that_reuses_a_block_are_not_taken_for_bombs(monkeypatch):
    # The bound scaled down with the file: more plain values than it, as 120,000 beside 100,000 (PyYAML's own
    # parse of those took ~5 CPU-s); the bomb tests above keep the shipped bound.
    monkeypatch.setattr(type_checks, "MAX_VALUES", 1_000)
    many = "machine_types: [" + "x, " * 1_200 + "]\n"
    assert type_checks.compose_yaml(many, "many.yaml")[3] == []
    reuse = "common: &s [{name: s, unit: bar}]\nmachine_types:\n" + "".join(
        f"  - {{name: t{i}, sensors: *s}}\n" for i in range(50)
    )
    assert type_checks.compose_yaml(reuse, "reuse.yaml")[3] == []


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_gzip_file_is_refused_by_name(cli, sqlite_engine, tmp_path, damage):
    text = "tenant,machine\n" + "".join(f"acme,g{i}\n" for i in range(2000))
    body = bytearray(gzip.compress(text.encode()))
    if damage == "truncated":
        body = body[: len(body) // 2]
    else:
        body[100] ^= 0xFF
    path = write(tmp_path, "machines.csv.gz", bytes(body))
    refused(cli("machines", "import", path), f"cannot read {path}")
    assert count(sqlite_engine, Machine) == 2


@pytest.mark.parametrize(
    ("mapping", "problem"),
    [
        ('columns = "ts"\n', "columns must be a table of field = column"),
        ("[columns]\nmachine = {x = 1}\n", "columns.machine must be text"),
        ('tenant = ["acme"]\n', "tenant must be text"),
        ('tenant = "acme"\nage_at = ' + "1" * 5000 + "\n", "line 2: a number of 5000 digits is too large"),
    ],
)
def test_a_mapping_file_with_values_of_the_wrong_type_is_refused_by_key(cli, tmp_path, mapping, problem):
    path = write(tmp_path, "map.toml", mapping)
    machines = write(tmp_path, "machines.csv", "tenant,machine\nacme,m3\n")
    refused(cli("machines", "import", machines, "--mapping", path), f"mapping file {path}: {problem}")


def test_an_unknown_time_zone_is_refused_before_the_first_row_is_stored(cli, sqlite_engine, tmp_path):
    body = "tenant,machine,ts,temp\nacme,m1,2024-02-01T00:00Z,1\nacme,m1,2024-02-01 01:00,2\n"
    telemetry = write(tmp_path, "t.csv", body)
    refused(
        cli("telemetry", "import", telemetry, "--timezone", "Mars/Base", "--batch-size", 1),
        "unknown time zone 'Mars/Base'",
    )
    assert count(sqlite_engine, Telemetry) == 0


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("types.toml", '[[machine_types]]\nname = "press"\nsensors = [{name = "s", unit = "b\\u0000ar"}]\n'),
        ("types.yaml", 'machine_types:\n  - name: press\n    sensors: [{name: s, unit: "b\\0ar"}]\n'),
        ("types.yaml", 'machine_types:\n  - name: press\n    sensors: [{name: s, unit: "b\\ud800ar"}]\n'),
    ],
)
def test_a_types_file_with_text_no_store_can_hold_is_refused_by_line_on_postgresql(
    pg_cli, tmp_path, name, body
):
    engine, cli = pg_cli
    refused(cli("types", "apply", write(tmp_path, name, body)), f"{name}:3: machine_types[0].sensors[0].unit")
    assert count(engine, MachineTypeVersion) == 0


def test_toml_nested_too_deep_is_refused_not_a_recursion_error(cli, tmp_path):
    deep = "a = " + "[" * 100_000 + "]" * 100_000 + "\n"
    refused(
        cli("types", "apply", write(tmp_path, "types.toml", deep)), "types.toml: file: not valid TOML: nested"
    )
    machines = write(tmp_path, "machines.csv", "tenant,machine\nacme,m3\n")
    mapping = write(tmp_path, "map.toml", deep)
    refused(cli("machines", "import", machines, "--mapping", mapping), "not valid TOML: nested too deep")


def test_a_catalog_text_with_a_nul_escape_is_refused_by_line(cli, tmp_path):
    shipped = catalog.DEFAULT_FILE.read_text(encoding="utf-8")
    version = catalog.default().version
    body = shipped.replace(f"version: {version}\n", f"version: {version + 1}\n").replace(
        "seal_leak: a leaking seal", 'seal_leak: "a leaking\\0 seal"'
    )
    line = next(n for n, text in enumerate(body.splitlines(), 1) if "leaking\\0" in text)
    refused(
        cli("catalog", "add", write(tmp_path, "catalog.yaml", body)),
        f"catalog.yaml:{line}: failures.en.seal_leak",
    )


@pytest.mark.parametrize("command", [("history", "import"), ("telemetry", "import")])
def test_a_reject_file_that_is_the_imported_file_is_refused_and_the_file_kept(
    cli, sqlite_engine, tmp_path, command
):
    body = HISTORY_HEADER + GOOD_LABEL + "acme,zz,2024-01-01,failure,p\n"
    path = write(tmp_path, "records.csv", body)
    refused(
        cli(*command, path, "--reject-file", tmp_path / "." / "records.csv"), "is the file being imported"
    )
    assert path.read_text(encoding="utf-8") == body
    assert count(sqlite_engine, Label) == count(sqlite_engine, Telemetry) == 0


def test_types_file_keys_and_values_of_an_odd_type_are_problems_not_a_type_error(cli, tmp_path):
    body = "machine_types:\n  - {name: t, sensors: [{name: s, unit: x, 2: a, ~: b}], 2024-01-01: a, foo: b}\n"
    body += "  - name: u\n    sensors: [{name: s, unit: x}]\n    components: [{name: c}]\n"
    body += "    failure_modes: [{name: m, component: [c], description: d}]\n"
    body += "    codes: [{code: [1], severity: info, text: x}]\n"
    refused(
        cli("types", "apply", write(tmp_path, "types.yaml", body)),
        "types.yaml:2: machine_types[0].foo: unknown key",
        "machine_types[0].sensors[0].None: unknown key",
        "types.yaml:6: machine_types[1].failure_modes[0].component: ['c'] is not one of",
        "types.yaml:7: machine_types[1].codes[0].code: must be text or a whole number",
    )


def test_a_telemetry_column_without_a_name_is_ignored_while_empty(cli, sqlite_engine, tmp_path):
    body = "tenant,machine,ts,temp,\r\n"  # Excel's trailing separator
    body += "acme,m1,2024-01-01T06:00Z,1.5,\r\n"
    body += "acme,m1,2024-01-01T07:00Z,2.5,oops\r\n"
    result = cli("telemetry", "import", write(tmp_path, "t.csv", body))
    assert result.exit_code == 0, result.output
    assert "2 rows: imported 1 new message, 0 stored already, 1 rejected" in result.stdout
    assert "line 3: bad_row: a value under a column without a name" in result.stderr
    with sqlite_engine.connect() as conn:
        assert [r for (r,) in conn.execute(select(Telemetry.readings))] == [{"temp": 1.5}]


def test_a_row_whose_tenant_column_contradicts_the_tenant_option_is_a_bad_row(cli, sqlite_engine, tmp_path):
    body = "tenant,machine,ts,temp\nacme,m1,2024-01-01T06:00Z,1.5\nbeta,m1,2024-01-01T07:00Z,2.5\n"
    result = cli("telemetry", "import", write(tmp_path, "t.csv", body), "--tenant", "acme")
    assert "line 3: bad_row: tenant 'beta' is not 'acme' (--tenant)" in result.stderr, result.output
    assert count(sqlite_engine, Telemetry) == 1

    history = HISTORY_HEADER + GOOD_LABEL + "beta,m1,2024-01-02T06:00:00Z,failure,pump\n"
    refused(
        cli("history", "import", write(tmp_path, "h.csv", history), "--tenant", "acme"),
        "line 3: tenant 'beta' is not 'acme' (--tenant)",
    )


def test_a_commissioning_date_with_trailing_text_is_a_bad_row_not_cut_to_a_date(cli, sqlite_engine, tmp_path):
    body = "tenant,machine,installed\nacme,m3,2015-01-05 06:00:00\n"
    body += "acme,m4,2024-01-015\nacme,m5,2024-01-01 oops\n"
    refused(
        cli("machines", "import", write(tmp_path, "machines.csv", body)),
        "line 3: installed '2024-01-015' is not a date",
        "line 4: installed '2024-01-01 oops' is not a date",
    )
    assert count(sqlite_engine, Machine) == 2


@pytest.mark.parametrize(
    ("command", "body", "problem"),
    [
        (["telemetry", "import"], "", "the file is empty: the first line must name the columns"),
        (["history", "import"], "\n\n", "the file is empty: the first line must name the columns"),
        (
            ["telemetry", "import"],
            "ts;tenant;machine;temp\n2024-01-01T00:00Z;acme;m1;61,5\n",
            "if ';' separates the columns, give --delimiter ';'",
        ),
        (
            ["machines", "import"],
            "machine\tmachine_type\nm3\tpump\n",
            "if tabs separate the columns, give --delimiter $'\\t'",
        ),
        (
            ["machines", "import"],
            "machine,machine_type\nm3,pump\n",
            "or give every row's tenant with --tenant",
        ),
    ],
)
def test_a_header_the_import_cannot_read_says_what_to_do(
    cli, sqlite_engine, tmp_path, command, body, problem
):
    path = write(tmp_path, "f.csv", body)
    refused(cli(*command, path), f"{path}: ", problem)
    assert count(sqlite_engine, Machine) == 2 and count(sqlite_engine, Telemetry) == 0


def test_a_reading_that_is_not_a_number_is_quoted_and_a_nan_is_no_finite_number(cli, sqlite_engine, tmp_path):
    body = 'ts,tenant,machine,temp\n2024-01-01T00:00Z,acme,m1,"61,5"\n2024-01-01T01:00Z,acme,m1,NaN\n'
    result = cli("telemetry", "import", write(tmp_path, "t.csv", body))
    assert result.exit_code == 0, result.output
    assert "line 2: wrong_type: readings.temp must be a number, got str '61,5'" in result.stderr
    assert "line 3: bad_value: readings.temp is nan, not a finite number" in result.stderr


@pytest.mark.parametrize("command", [["telemetry", "import"], ["history", "import", "--kind", "failure"]])
def test_a_time_format_with_a_directive_strptime_lacks_is_refused_before_any_row(
    cli, sqlite_engine, tmp_path, command
):
    path = write(tmp_path, "t.csv", "ts,tenant,machine,component,temp\n2024-01-01 06:00,acme,m1,pump,1\n")
    refused(
        cli(*command, path, "--time-format", "%d.%m.%Y %Q"),
        "time_format '%d.%m.%Y %Q': 'Q' is a bad directive",
    )
    assert (
        count(sqlite_engine, Telemetry)
        == count(sqlite_engine, Quarantine)
        == count(sqlite_engine, Label)
        == 0
    )


def test_a_kind_mapping_to_no_label_kind_is_refused_by_its_key_not_blamed_on_the_row(
    cli, sqlite_engine, tmp_path
):
    path = write(
        tmp_path, "h.csv", "ts,tenant,machine,kind,component\n2024-01-01T06:00Z,acme,m1,Breakdown,pump\n"
    )
    mapping = write(tmp_path, "map.toml", '[kinds]\nBreakdown = "explode"\n')
    refused(
        cli("history", "import", path, "--mapping", mapping),
        f"mapping file {mapping}: kinds.Breakdown: 'explode' is not one of failure, replacement, maintenance",
    )
    assert count(sqlite_engine, Label) == 0
