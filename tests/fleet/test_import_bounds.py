"""Imports with bounded memory: a line past the bound is refused unread; chunk sizes change nothing stored."""

from __future__ import annotations

import csv
import gzip
import multiprocessing
import os
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from fleet import csv_import, history_import, labels
from fleet.csv_import import ColumnMap, ImportRefused
from fleet.settings import get_settings
from fleet.tables import Customer, Label, Machine, Quarantine, Telemetry
from ingest import telemetry_import
from servicecast.cli import app
from tests.fleet.test_hostile_files import count, refused
from tests.ingest.support import register_fleet

LONG = 4 * csv_import.MAX_LINE  # characters of the hostile cell: a few MB, four times the bound
BOUND = 2**16  # a bound far below the line's length: what the reader holds is seen apart from the line
T = TypeVar("T")


def write(path: Path, *lines: str) -> Path:
    """A CSV file of these lines, each ended by a newline."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        for line in lines:
            out.write(line + "\n")
    return path


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz"])
def test_a_line_past_the_bound_is_refused_by_its_line_without_holding_it(tmp_path, name):
    lines = ["machine,ts,temp", "m1,2024-01-01T06:00Z,1", f"m1,2024-01-01T07:00Z,{'9' * LONG}"]
    lines.append("m1,2024-01-01T08:00Z,2")
    path = tmp_path / name
    with (gzip.open if name.endswith(".gz") else open)(path, "wt", encoding="utf-8", newline="") as out:
        out.write("\n".join(lines) + "\n")  # gzip: a few kB that a reader holding the file would inflate
    tracemalloc.start()
    try:
        rows = list(csv_import.read_rows(path, ColumnMap(), required=("machine",), fields=(), max_line=BOUND))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < LONG / 4, f"{peak:,} bytes at the peak, for a line of {LONG:,} characters"
    assert [line for line, _ in rows] == [2, 3, 4]
    assert rows[2][1] == {"machine": "m1", "ts": "2024-01-01T08:00Z", "temp": "2"}
    with pytest.raises(ValueError, match=f"line longer than {BOUND} characters, not read"):
        csv_import.check_row(rows[1][1])


def test_each_import_refuses_a_line_past_the_bound_by_its_line_and_reads_the_rest(
    sqlite_engine, tmp_path, monkeypatch
):
    register_fleet(sqlite_engine, "acme", ["m1"])
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    cli = CliRunner()
    reason = f"line 3: a line longer than {csv_import.MAX_LINE} characters, not read"

    history = write(
        tmp_path / "h.csv",
        "machine,ts,kind,component",
        "m1,2024-01-01T06:00Z,failure,pump",
        f"m1,2024-01-02T06:00Z,failure,{'p' * LONG}",
        "m1,2024-01-03T06:00Z,failure,valve",
    )
    refused(cli.invoke(app, ["history", "import", str(history), "--tenant", "acme"]), reason)
    assert count(sqlite_engine, Label) == 0
    rejects = tmp_path / "rejects.csv"
    done = cli.invoke(
        app, ["history", "import", str(history), "--tenant", "acme", "--reject-file", str(rejects)]
    )
    assert done.exit_code == 0, done.output
    assert count(sqlite_engine, Label) == 2
    with open(rejects, newline="") as f:
        assert [(r["line"], r["reason"]) for r in csv.DictReader(f)] == [
            ("3", reason.removeprefix("line 3: "))
        ]

    machines = write(tmp_path / "m.csv", "machine,serial", "m2,s2", f"m3,{'s' * LONG}", "m4,s4")
    refused(cli.invoke(app, ["machines", "import", str(machines), "--tenant", "acme"]), reason)
    assert count(sqlite_engine, Machine) == 1

    telemetry = write(
        tmp_path / "t.csv",
        "machine,ts,temp",
        "m1,2024-01-01T06:00Z,1",
        f"m1,2024-01-01T07:00Z,{'9' * LONG}",
        "m1,2024-01-01T08:00Z,2",
    )
    done = cli.invoke(app, ["telemetry", "import", str(telemetry), "--tenant", "acme"])
    assert done.exit_code == 0, done.output
    assert "3 rows: imported 2 new messages, 0 stored already, 1 rejected" in done.stdout
    assert reason.replace("line 3: ", "line 3: bad_row: ") in done.stderr
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(Quarantine.reason, Quarantine.payload)).all() == [("bad_row", b"[]")]


def test_a_quoted_field_over_many_lines_past_the_bound_refuses_the_file_before_anything_is_stored(
    sqlite_engine, tmp_path
):
    register_fleet(sqlite_engine, "acme", ["m1"])
    field = '"' + "note\n" * 100 + '"'
    path = write(
        tmp_path / "t.csv",
        "machine,ts,temp,text",
        "m1,2024-01-01T06:00Z,1,",
        f"m1,2024-01-01T07:00Z,2,{field}",
    )
    with pytest.raises(
        csv_import.errors.InvalidInput, match="line 3: a row longer than 200 characters over several lines"
    ):
        telemetry_import.import_file(
            engine=sqlite_engine, path=path, mapping=ColumnMap(tenant="acme"), max_line=200
        )
    assert count(sqlite_engine, Telemetry) == 0


ROWS = [
    "m1,2024-01-01T06:00Z,1",
    "m2,2024-01-01T06:00Z,2",
    "m1,2024-01-01T06:00Z,1",  # the same message again
    "m1,2024-01-01T06:00Z,5",  # another at the same time: a seq conflict
    "m1,yesterday,3",
    "m9,2024-01-01T07:00Z,3",  # not registered
    f"m1,2024-01-01T08:00Z,{'7' * 300}",  # past the bound of 200
    "m2,2024-01-01T07:00Z,oops",
    "m2,2024-01-01T08:00Z,4",
    "m2,2024-01-01T08:00Z,4",
    "m1,2024-01-01T09:00Z,6",
]


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_chunks_of_any_size_store_and_quarantine_what_one_chunk_does(database_url, engine, tmp_path, chunk):
    path = write(tmp_path / "t.csv", "machine,ts,temp", *ROWS)
    parquet_path = tmp_path / "t.parquet"
    _parquet(path, parquet_path, row_group=2)  # Parquet is read in batches of `chunk` rows too
    results = {}
    runs = [("csv", path, 1000), ("csv_chunks", path, chunk)]
    runs += [("parquet", parquet_path, 1000), ("parquet_chunks", parquet_path, chunk)]
    for tenant, file, size in runs:
        register_fleet(engine, tenant, ["m1", "m2"])
        report = telemetry_import.import_file(
            engine=engine, path=file, mapping=ColumnMap(tenant=tenant), batch_size=size, max_line=200
        )
        rejects = [(r.line, r.reason.replace(repr(tenant), "TENANT")) for r in report.rejects]
        results[tenant] = ((report.rows, report.new, report.existing, rejects), *_stored(engine, tenant))
    assert results["csv"][0][:3] == (11, 4, 2)
    assert len(results["csv"][2]) == 5
    assert results["csv_chunks"] == results["csv"]
    assert results["parquet_chunks"] == results["parquet"]
    assert results["parquet"][1] == results["csv"][1]  # the rows stored; a Parquet row has no line


def _parquet(source: Path, target: Path, *, row_group: int) -> None:
    """The CSV file's rows as a Parquet file of text columns, `row_group` rows a group."""
    import pyarrow as pa
    from pyarrow import parquet

    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {name: [r[name] for r in rows] for name in rows[0]}
    parquet.write_table(pa.table(columns), target, row_group_size=row_group)


def _stored(engine: Engine, tenant: str) -> tuple[list, list]:
    """Tenant's telemetry (machine, seq, ts, readings) and quarantine (topic without tenant, payload, …)."""
    with engine.connect() as conn:
        telemetry = conn.execute(
            select(Machine.code, Telemetry.seq, Telemetry.ts, Telemetry.readings)
            .join(Machine, Machine.id == Telemetry.machine_id)
            .join(Customer, Customer.id == Machine.customer_id)
            .where(Customer.tenant == tenant)
            .order_by(Machine.code, Telemetry.seq)
        ).all()
        quarantine = conn.execute(
            select(Quarantine.topic, Quarantine.payload, Quarantine.reason, Quarantine.detail).where(
                Quarantine.topic.like(f"fleet/{tenant}/%")
            )
        ).all()
    return [tuple(r) for r in telemetry], sorted(
        (t.replace(f"/{tenant}/", "/"), p, r, d.replace(repr(tenant), "TENANT")) for t, p, r, d in quarantine
    )


HISTORY = [f"1,2026-01-0{day}T06:00:00Z,failure,pump" for day in range(1, 8)]


def test_history_in_batches_stores_what_one_batch_does_and_a_bad_row_after_them_rolls_them_back(
    database_url, engine, tmp_path
):
    path = write(
        tmp_path / "h.csv", "machine,ts,kind,component", *HISTORY, HISTORY[1]
    )  # line 9: line 3's again
    refusals = []
    for tenant, size in (("one", 1000), ("many", 2)):
        register_fleet(engine, tenant, ["1"])
        with pytest.raises(ImportRefused) as refused:
            history_import.import_history(
                engine=engine, path=path, mapping=ColumnMap(tenant=tenant), batch_size=size
            )
        refusals.append([(r.line, r.reason) for r in refused.value.report.rejects])
    assert refusals[0] == refusals[1] == [(9, "same machine, time, kind and component as line 3")]
    assert count(engine, Label) == 0  # the batches of two written before line 9: rolled back

    stored = []
    for tenant, size in (("one", 1000), ("many", 2)):
        report = history_import.import_history(
            engine=engine,
            path=path,
            mapping=ColumnMap(tenant=tenant),
            batch_size=size,
            reject_file=tmp_path / "r",
        )
        assert (report.rows, report.new, report.existing, len(report.rejects)) == (8, 7, 0, 1)
        with engine.connect() as conn:
            found = labels.read(conn)
        stored.append(
            found[found["tenant"] == tenant]
            .drop(columns=["label_id", "tenant", "machine_id"])
            .reset_index(drop=True)
        )
    assert stored[0].equals(stored[1]) and len(stored[0]) == 7


def traced(call: Callable[[], T]) -> tuple[int, T]:
    """Peak traced bytes of `call()`, and what it returned."""
    tracemalloc.start()
    try:
        result = call()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def peaks(measure: Callable[[int], tuple[int, T]]) -> tuple[int, int, T]:
    """The peaks `measure(rows)` gives for 1,000 and 4,000 rows (200 before them: caches and imports warmed
    up), and what it gave for the 4,000."""
    measure(200)
    few, _ = measure(1000)
    many, result = measure(4000)
    return few, many, result


def _cli_peak(cli: CliRunner, args: list[str]) -> tuple[int, object]:
    """Peak traced bytes of a command, and its result."""
    return traced(partial(cli.invoke, app, args))


def _bad_rows_peak(cli: CliRunner, folder: Path, rows: int) -> tuple[int, object]:
    """Peak traced bytes of a telemetry import (with a reject file) of `rows` rows, each one rejected."""
    path = write(
        folder / f"bad{rows}.csv",
        "machine,ts,temp",
        *(f"m1,2024-01-{1 + i % 28:02}T06:00Z,n/a" for i in range(rows)),
    )
    rejects = folder / f"rejects{rows}.csv"
    args = ["telemetry", "import", str(path), "--tenant", "acme", "--batch-size", "500"]
    peak, done = _cli_peak(cli, [*args, "--reject-file", str(rejects)])
    assert done.exit_code == 0, done.output
    return peak, done


def _bad_rows_peaks(folder: Path, sizes: tuple[int, ...]) -> list[tuple[int, str, str]]:
    """Peak traced bytes, stdout and stderr of a telemetry import of each number of bad rows, in turn."""
    cli = CliRunner()
    runs = (_bad_rows_peak(cli, folder, n) for n in sizes)
    return [(peak, done.stdout, done.stderr) for peak, done in runs]


@pytest.fixture(scope="module")
def apart() -> Iterator[ProcessPoolExecutor]:
    """A process of the module's own for its traced imports, started once (a start imports this module, the
    CLI and their packages: ~2 CPU-s)."""
    # tracemalloc counts what every thread of the process allocates: in a pytest worker of a clean-clone CI
    # the peak of 4,000 rows once came out 7.6 MB above its usual 3.7 MB. A process of its own holds only the
    # import.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def _on(url: str, measure: Callable[..., list], folder: Path, sizes: tuple[int, ...]) -> list:
    """`measure(folder, sizes)` with the settings naming the database at `url` (in the module's process)."""
    os.environ["SERVICECAST_DATABASE_URL"] = url
    get_settings.cache_clear()
    return measure(folder, sizes)


def _apart(engine: Engine, apart: ProcessPoolExecutor, measure: Callable[..., list], folder: Path) -> list:
    """What `measure(folder, sizes)` gives for 1,000 and 4,000 bad rows of tenant acme's machine m1, run in
    the module's process on `engine`'s database."""
    register_fleet(engine, "acme", ["m1"])
    url = engine.url.render_as_string(hide_password=False)
    # Each measure's first import (200 rows) warms up caches and imports.
    return apart.submit(_on, url, measure, folder, (200, 1000, 4000)).result()[1:]


def test_a_telemetry_import_of_bad_rows_holds_none_of_them_and_writes_each_to_the_reject_file(
    sqlite_engine, tmp_path, apart
):
    (few, _, _), (many, stdout, stderr) = _apart(sqlite_engine, apart, _bad_rows_peaks, tmp_path)
    # A rejected row kept costs about 600 traced bytes: 3,000 more would be 1.8 MB more at the peak.
    assert many - few < 1_000_000, f"{few:,} bytes at the peak for 1,000 bad rows, {many:,} for 4,000"
    assert "4000 rows: imported 0 new messages, 0 stored already, 4000 rejected" in stdout
    assert "line 51: wrong_type: readings.temp must be a number, got str 'n/a'" in stderr
    assert "line 52:" not in stderr and "… and 3950 more" in stderr
    with open(tmp_path / "rejects4000.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["line"] for r in rows] == [str(n) for n in range(2, 4002)]
    assert rows[-1] == {
        "line": "4001",
        "reason": "wrong_type: readings.temp must be a number, got str 'n/a'",
        "machine": "m1",
        "ts": "2024-01-24T06:00Z",
        "temp": "n/a",
    }


BAD_TIME = "time 'never' is not ISO 8601, e.g. 2015-01-05 06:00:00"
NOT_REGISTERED = "machine acme/m9 is not registered (servicecast machines import)"


def _history_bad_lines(rows: int) -> list[str]:
    """A history file of `rows` bad rows: by turns a time that is none (found in the import's first read) and
    a machine not registered (found in the second)."""
    return [
        "machine,ts,kind,component",
        *(
            "m1,never,failure,pump" if i % 2 == 0 else f"m9,2024-01-{1 + i % 28:02}T06:00Z,failure,pump"
            for i in range(rows)
        ),
    ]


BAD_DATE = "installed 'never' is not a date (YYYY-MM-DD)"
TWICE = "same tenant and machine as line 2"


def _machines_bad_lines(rows: int) -> list[str]:
    """A machines file of machine m1 (registered already), then `rows` bad rows: by turns a commissioning
    date that is none and machine m1 again."""
    return [
        "machine,installed",
        "m1,2020-01-01",
        *(f"m{i},never" if i % 2 == 0 else "m1,2021-01-01" for i in range(rows)),
    ]


BAD_LINES = {"history": _history_bad_lines, "machines": _machines_bad_lines}


def _refused_and_rejected_peaks(
    command: str, folder: Path, sizes: tuple[int, ...]
) -> list[tuple[int, int, object, object]]:
    """Peak traced bytes and result of a `command` import (history, machines) of each number of bad rows
    (BAD_LINES), refused (no reject file) and with a reject file."""
    cli = CliRunner()
    measured = []
    for rows in sizes:
        path = write(folder / f"{command}{rows}.csv", *BAD_LINES[command](rows))
        args = [command, "import", str(path), "--tenant", "acme"]
        refused_peak, refusal = _cli_peak(cli, args)
        peak, done = _cli_peak(cli, [*args, "--reject-file", str(folder / f"{command}_rejects{rows}.csv")])
        measured.append((refused_peak, peak, refusal, done))
    return [
        (a, b, (r.exit_code, r.stdout, r.stderr), (d.exit_code, d.stdout, d.stderr))
        for a, b, r, d in measured
    ]


def _bad_rows_apart(
    command: str, engine: Engine, apart: ProcessPoolExecutor, folder: Path, bad: list, summary: str
) -> list[dict]:
    """The rows of the reject file of a `command` import of 4,000 bad rows (BAD_LINES; `bad`: each one's line
    and reason), once the peaks of 4,000 are seen to stay within 1 MB of those of 1,000, the refusal to list
    the first 50 and count the rest, and the import with the reject file to say `summary`."""
    measured = _apart(engine, apart, partial(_refused_and_rejected_peaks, command), folder)
    (few_refused, few, _, _), (many_refused, many, refusal, done) = measured
    # A rejected row kept costs about 600 traced bytes: 3,000 more would be 1.8 MB more at the peak.
    assert max(many_refused - few_refused, many - few) < 1_000_000, (
        f"{few_refused:,} and {few:,} bytes at the peak for 1,000 bad rows (refused; with a reject file), "
        f"{many_refused:,} and {many:,} for 4,000"
    )

    exit_code, stdout, stderr = refusal
    assert exit_code == 1, stdout + stderr
    listed = "".join(f"line {line}: {reason}\n" for line, reason in bad[:50])
    assert listed + "… and 3950 more\n" in stderr and f"line {bad[50][0]}:" not in stderr
    assert "4000 bad rows: nothing imported" in stderr
    exit_code, stdout, stderr = done
    rejects = folder / f"{command}_rejects4000.csv"
    assert exit_code == 0, stdout + stderr
    assert summary in stdout and f"4000 bad rows written to {rejects}" in stdout
    with open(rejects, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["line"]), r["reason"]) for r in rows] == bad
    return rows


def test_a_history_import_of_bad_rows_holds_none_of_them_and_writes_each_to_the_reject_file_in_line_order(
    sqlite_engine, tmp_path, apart
):
    bad = [(line, BAD_TIME if line % 2 == 0 else NOT_REGISTERED) for line in range(2, 4002)]
    summary = "4000 rows: imported 0 new labels, 0 stored already, 4000 rejected"
    rows = _bad_rows_apart("history", sqlite_engine, apart, tmp_path, bad, summary)
    assert rows[-1] == {
        "line": "4001",
        "reason": NOT_REGISTERED,
        "machine": "m9",
        "ts": "2024-01-24T06:00Z",
        "kind": "failure",
        "component": "pump",
    }
    assert count(sqlite_engine, Label) == 0


def test_a_machines_import_of_bad_rows_holds_none_of_them_and_writes_each_to_the_reject_file_in_line_order(
    sqlite_engine, tmp_path, apart
):
    bad = [(line, BAD_DATE if line % 2 == 1 else TWICE) for line in range(3, 4003)]
    summary = "4001 rows: imported 0 new machines, 1 stored already, 4000 rejected"
    rows = _bad_rows_apart("machines", sqlite_engine, apart, tmp_path, bad, summary)
    assert rows[-2:] == [
        {"line": "4001", "reason": BAD_DATE, "machine": "m3998", "installed": "never"},
        {"line": "4002", "reason": TWICE, "machine": "m1", "installed": "2021-01-01"},
    ]
    assert count(sqlite_engine, Machine) == 1 and count(sqlite_engine, Customer) == 1


def _history_peak(engine: Engine, folder: Path, rows: int, **options: object) -> tuple[int, object]:
    """Peak traced bytes of importing `rows` labels of machine m1, one an hour, in batches of 500."""
    path = write(
        folder / f"h{rows}.csv",
        "machine,ts,kind,component",
        *(
            f"m1,2020-01-{1 + i // 24 % 28:02}T{i % 24:02}:{i // 672:02}Z,maintenance,pump"
            for i in range(rows)
        ),
    )
    mapping = ColumnMap(tenant="acme")
    return traced(
        partial(
            history_import.import_history,
            engine=engine,
            path=path,
            mapping=mapping,
            batch_size=500,
            **options,
        )
    )


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_history_import_holds_no_key_per_label(sqlite_engine, tmp_path, dry_run):
    register_fleet(sqlite_engine, "acme", ["m1"])
    few, many, report = peaks(partial(_history_peak, sqlite_engine, tmp_path, dry_run=dry_run))
    # A key kept per label costs about 300 traced bytes: 3,000 more would be 0.9 MB more at the peak.
    assert many - few < 300_000, f"{few:,} bytes at the peak for 1,000 labels, {many:,} for 4,000"
    existing = 0 if dry_run else 1000  # the first 1,000 are the file imported before
    assert (report.rows, report.new, report.existing, report.rejects) == (4000, 4000 - existing, existing, [])
    assert count(sqlite_engine, Label) == (0 if dry_run else 4000)


def _long_rows_peak(engine: Engine, folder: Path, rows: int) -> int:
    """Peak traced bytes of a telemetry import of `rows` rows of 200,000 characters, each too_large."""
    wide = "x" * 200_000  # under the line bound, far past a message's 64 kB
    lines = (f"m1,2024-01-01T{h // 60:02}:{h % 60:02}Z,{wide}" for h in range(rows))
    path = write(folder / f"t{rows}.csv", "machine,ts,note", *lines)
    tracemalloc.start()
    try:
        report = telemetry_import.import_file(engine=engine, path=path, mapping=ColumnMap(tenant="acme"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (report.rows, {r.reason.split(":")[0] for r in report.rejects}) == (rows, {"too_large"})
    return peak


def test_a_telemetry_import_of_long_rows_holds_a_batch_of_bounded_bytes_not_batch_size_rows(
    sqlite_engine, tmp_path, monkeypatch
):
    register_fleet(sqlite_engine, "acme", ["m1"])
    # 1 MB instead of 8, so that a small file shows it: 5 messages of 200 kB a batch, not 5,000.
    monkeypatch.setattr(telemetry_import, "BATCH_BYTES", 2**20, raising=False)
    few = _long_rows_peak(sqlite_engine, tmp_path, 12)
    many = _long_rows_peak(sqlite_engine, tmp_path, 36)
    assert many < few * 1.5, f"{few:,} bytes at the peak for 12 rows of 200 kB, {many:,} for 36"
