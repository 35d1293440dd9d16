"""`servicecast telemetry import`: readings and events from CSV through the contract (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import make_url, select
from typer.testing import CliRunner

from fleet.tables import MachineEvent, Telemetry
from ingest.contract import parse_message
from servicecast.cli import app
from tests import services
from tests.ingest.support import quarantine_reasons, register_fleet

TELEMETRY = """datetime,machineID,volt,rotate
2015-01-01 06:00:00,1,170.5,440.5
2015-01-01 07:00:00,1,171.0,oops
2015-01-01 08:00:00,1,172.0,
2015-01-01 08:00:00,1,173.0,441
yesterday,1,1.0,1.0
2015-01-01 09:00:00,7,1.0,1.0
2015-01-01 09:00:00,1,nan,2.0
2015-01-01 10:00:00,1,174.0,442.0
"""
EVENTS = """datetime,machineID,errorID
2015-01-01 06:00:00,1,error1
2015-01-01 06:00:00,1,error2
2015-01-01 07:00:00,1,bad code
2015-01-01 08:00:00,1,error1
"""
AZURE = ["--tenant", "acme", "--column", "ts=datetime", "--column", "machine=machineID"]


def run(database_url: str, path, *options: str):
    """`servicecast telemetry import` with the given options; returns the result."""
    env = {"SERVICECAST_DATABASE_URL": database_url}
    return CliRunner().invoke(app, ["telemetry", "import", str(path), *AZURE, *options], env=env)


def at(hour: int) -> datetime:
    """2015-01-01 at this hour, UTC."""
    return datetime(2015, 1, 1, hour, tzinfo=UTC)


def test_readings_import_quarantines_bad_rows_by_line_and_stores_the_rest_once(
    database_url, engine, tmp_path
):
    register_fleet(engine, "acme", ["1"])
    path = tmp_path / "telemetry.csv"
    path.write_text(TELEMETRY)

    first = run(database_url, path)
    assert first.exit_code == 0, first.output
    assert "8 rows: imported 3 new messages, 0 stored already, 5 rejected" in first.stdout
    for line, reason in [
        (3, "wrong_type: readings.rotate must be a number"),
        (5, "seq_conflict"),
        (6, "bad_timestamp"),
        (7, "unknown_machine"),
        (8, "bad_value: readings.volt is nan, not a finite number"),
    ]:
        assert f"line {line}: {reason}" in first.stderr
    with engine.connect() as conn:
        rows = conn.execute(select(Telemetry.ts, Telemetry.readings).order_by(Telemetry.ts)).all()
    assert [(ts, readings) for ts, readings in rows] == [
        (at(6), {"volt": 170.5, "rotate": 440.5}),
        (at(8), {"volt": 172.0, "rotate": None}),
        (at(10), {"volt": 174.0, "rotate": 442.0}),
    ]
    assert sorted(quarantine_reasons(engine)) == [
        "bad_timestamp",
        "bad_value",
        "seq_conflict",
        "unknown_machine",
        "wrong_type",
    ]

    again = run(database_url, path)
    assert again.exit_code == 0, again.output
    assert "8 rows: imported 0 new messages, 3 stored already, 5 rejected" in again.stdout
    with engine.connect() as conn:
        assert len(conn.execute(select(Telemetry.seq)).all()) == 3
    assert len(quarantine_reasons(engine)) == 5


def test_events_import_keeps_codes_at_the_same_time_and_refuses_a_bad_code(database_url, engine, tmp_path):
    register_fleet(engine, "acme", ["1"])
    path = tmp_path / "errors.csv"
    path.write_text(EVENTS)

    first = run(database_url, path, "--kind", "events", "--column", "code=errorID")
    assert first.exit_code == 0, first.output
    assert "4 rows: imported 3 new messages, 0 stored already, 1 rejected" in first.stdout
    assert "line 4: bad_value: code 'bad code'" in first.stderr
    again = run(database_url, path, "--kind", "events", "--column", "code=errorID")
    assert "4 rows: imported 0 new messages, 3 stored already, 1 rejected" in again.stdout
    with engine.connect() as conn:
        rows = conn.execute(select(MachineEvent.ts, MachineEvent.code).order_by(MachineEvent.seq)).all()
    assert [tuple(r) for r in rows] == [(at(6), "error1"), (at(6), "error2"), (at(8), "error1")]
    assert quarantine_reasons(engine) == ["bad_value"]


def test_a_file_without_the_mapped_columns_is_refused_before_anything_is_stored(
    database_url, engine, tmp_path
):
    path = tmp_path / "telemetry.csv"
    path.write_text("time,machine,volt\n2015-01-01 06:00:00,1,1.0\n")
    result = run(database_url, path)
    assert result.exit_code != 0
    assert "'datetime' (ts) in the header" in result.output


def test_parquet_rows_take_the_same_path_and_a_bad_row_is_named_by_its_number(database_url, engine, tmp_path):
    import pyarrow as pa
    from pyarrow import parquet

    register_fleet(engine, "acme", ["1"])
    path = tmp_path / "telemetry.parquet"
    table = pa.table(
        {
            "datetime": pa.array([at(6), at(7), at(8)], type=pa.timestamp("us")),
            "machineID": [1, 1, 1],
            "volt": [170.5, float("nan"), 172.25],
        }
    )
    parquet.write_table(table, path)

    first = run(database_url, path)
    assert first.exit_code == 0, first.output
    assert "3 rows: imported 2 new messages, 0 stored already, 1 rejected" in first.stdout
    assert "line 2: bad_value: readings.volt is nan, not a finite number" in first.stderr
    again = run(database_url, path)
    assert "3 rows: imported 0 new messages, 2 stored already, 1 rejected" in again.stdout
    with engine.connect() as conn:
        rows = conn.execute(select(Telemetry.ts, Telemetry.readings).order_by(Telemetry.ts)).all()
    assert [tuple(r) for r in rows] == [(at(6), {"volt": 170.5}), (at(8), {"volt": 172.25})]
    assert quarantine_reasons(engine) == ["bad_value"]


def test_a_reading_that_is_no_finite_number_is_refused_as_the_mqtt_path_refuses_it(
    database_url, engine, tmp_path
):
    """Before: the import called a NaN cell `wrong_type: … got str 'nan'`, MQTT a NaN reading `bad_value`."""
    register_fleet(engine, "acme", ["1"])
    cells = {"nan": "NaN", "NaN": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # cell → JSON's token
    path = tmp_path / "telemetry.csv"
    path.write_text("datetime,machineID,volt\n" + "".join(f"{at(h)},1,{c}\n" for h, c in enumerate(cells)))

    result = run(database_url, path)

    assert result.exit_code == 0, result.output
    assert "4 rows: imported 0 new messages, 0 stored already, 4 rejected" in result.stdout
    for line, (cell, token) in enumerate(cells.items(), start=2):
        payload = f'{{"seq": 1, "ts": "{at(0).isoformat()}", "readings": {{"volt": {token}}}}}'
        by_mqtt = parse_message("fleet/acme/1/telemetry", payload.encode())
        assert f"line {line}: {by_mqtt.reason}: {by_mqtt.detail}\n" in result.stderr, cell
        shown = "nan" if token == "NaN" else cell
        assert (by_mqtt.reason, by_mqtt.detail) == (
            "bad_value",
            f"readings.volt is {shown}, not a finite number",
        )
    assert quarantine_reasons(engine) == ["bad_value"] * 4


def test_a_seq_past_64_bits_is_a_bad_row_and_the_rows_around_it_are_stored(database_url, engine, tmp_path):
    register_fleet(engine, "acme", ["1"])
    path = tmp_path / "telemetry.csv"
    huge = "9" * 30  # an int to Python, past what JSON is written with
    path.write_text(
        f"datetime,machineID,seq,volt\n2015-01-01 06:00:00,1,1,170.5\n2015-01-01 07:00:00,1,{huge},171\n"
        "2015-01-01 08:00:00,1,3,172\n"
    )
    result = run(database_url, path, "--batch-size", "1")
    assert result.exit_code == 0, result.output
    assert "3 rows: imported 2 new messages, 0 stored already, 1 rejected" in result.stdout
    assert f"line 3: bad_value: seq {huge} is outside 0..2^63-1" in result.stderr
    with engine.connect() as conn:
        assert conn.execute(select(Telemetry.seq).order_by(Telemetry.seq)).scalars().all() == [1, 3]
    assert quarantine_reasons(engine) == ["bad_value"]


def test_an_events_export_imported_again_with_one_more_at_a_time_stores_that_one_and_no_duplicate(
    database_url, engine, tmp_path
):
    register_fleet(engine, "acme", ["1"])
    path = tmp_path / "errors.csv"
    path.write_text(
        "datetime,machineID,errorID\n" + "".join(f"2015-01-01 06:00:00,1,{c}\n" for c in ("error1", "error2"))
    )
    first = run(database_url, path, "--kind", "events", "--column", "code=errorID")
    assert "2 rows: imported 2 new messages, 0 stored already, 0 rejected" in first.stdout, first.output
    # The same export a month later: one more code at that time, listed first, and a row given twice.
    rows = ["error0", "error1", "error2", "error2"]
    path.write_text("datetime,machineID,errorID\n" + "".join(f"2015-01-01 06:00:00,1,{r}\n" for r in rows))
    again = run(database_url, path, "--kind", "events", "--column", "code=errorID")
    assert "4 rows: imported 1 new message, 3 stored already, 0 rejected" in again.stdout, again.output
    with engine.connect() as conn:
        rows = conn.execute(select(MachineEvent.ts, MachineEvent.code).order_by(MachineEvent.code)).all()
    assert [tuple(r) for r in rows] == [(at(6), "error0"), (at(6), "error1"), (at(6), "error2")]
    assert quarantine_reasons(engine) == []


def test_events_at_one_millisecond_past_the_room_of_a_derived_seq_are_refused_by_line(
    database_url, engine, tmp_path
):
    register_fleet(engine, "acme", ["1"])
    path = tmp_path / "errors.csv"
    codes = [f"E{n}" for n in range(101)]
    path.write_text("datetime,machineID,errorID\n" + "".join(f"2015-01-01 06:00:00,1,{c}\n" for c in codes))
    for stored in (0, 100):
        done = run(database_url, path, "--kind", "events", "--column", "code=errorID")
        assert f"101 rows: imported {100 - stored} new messages, {stored} stored already, 1 rejected" in (
            done.stdout
        ), done.output
        assert "line 102: bad_value: 100 other events of machine 1 at 2015-01-01 06:00:00 UTC" in done.stderr
    with engine.connect() as conn:
        assert sorted(conn.execute(select(MachineEvent.code)).scalars()) == sorted(codes[:100])


CUT_ONCE = """
CREATE SEQUENCE cut_once;
CREATE FUNCTION cut_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.code = 'E3' AND nextval('cut_once') = 1 THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER cut_once BEFORE INSERT ON machine_events FOR EACH ROW EXECUTE FUNCTION cut_once();
"""


def test_a_session_the_server_cuts_inside_a_batch_is_opened_again_and_the_import_stores_every_row_once(
    postgres_url, tmp_path
):
    with services.migrated_engine(postgres_url) as engine:
        register_fleet(engine, "acme", ["1"])
        with engine.begin() as conn:  # the server ends the importer's session in its second batch, once
            conn.exec_driver_sql(CUT_ONCE)
        path = tmp_path / "errors.csv"
        codes = [f"E{n}" for n in range(1, 7)]
        path.write_text(
            "datetime,machineID,errorID\n"
            + "".join(f"2015-01-01 06:0{n}:00,1,{c}\n" for n, c in enumerate(codes))
        )
        done = run(postgres_url, path, "--kind", "events", "--column", "code=errorID", "--batch-size", "2")
        assert done.exit_code == 0, done.output
        assert "6 rows: imported 6 new messages, 0 stored already, 0 rejected" in done.stdout
        with engine.connect() as conn:
            assert sorted(conn.execute(select(MachineEvent.code)).scalars()) == codes
            assert conn.exec_driver_sql("SELECT last_value FROM cut_once").scalar() == 2


def test_a_database_that_keeps_refusing_ends_the_import_with_one_line_saying_what_is_stored(
    postgres_url, tmp_path
):
    with services.migrated_engine(postgres_url) as engine:
        register_fleet(engine, "acme", ["1"])
        path = tmp_path / "errors.csv"
        path.write_text("datetime,machineID,errorID\n2015-01-01 06:00:00,1,E1\n2015-01-01 07:00:00,1,E2\n")
        database = make_url(postgres_url).database
        with engine.begin() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        done = run(postgres_url, path, "--kind", "events", "--column", "code=errorID", "--batch-size", "1")
    assert done.exit_code == 1
    assert "cannot import into the database SERVICECAST_DATABASE_URL=" in done.stderr
    assert (
        "in a read-only transaction; the rows before line 2 are stored; the same import again" in done.stderr
    )
    assert "Traceback" not in done.output


def test_digits_with_underscores_are_text_not_a_number_python_would_read(database_url, engine, tmp_path):
    register_fleet(engine, "acme", ["1"])
    path = tmp_path / "t.csv"
    path.write_text(
        "datetime,machineID,seq,volt\n2015-01-01 06:00:00,1,1_0,1.5\n2015-01-01 07:00:00,1,11,1_5\n"
    )
    done = run(database_url, path)
    assert "2 rows: imported 0 new messages, 0 stored already, 2 rejected" in done.stdout, done.output
    assert "line 2: wrong_type: seq must be an integer, got str" in done.stderr
    assert "line 3: wrong_type: readings.volt must be a number, got str '1_5'" in done.stderr


def test_a_parquet_row_with_text_that_is_not_utf8_is_a_bad_row_and_the_others_are_stored(
    database_url, engine, tmp_path
):
    import pyarrow as pa
    from pyarrow import parquet

    register_fleet(engine, "acme", ["1"])
    path = tmp_path / "telemetry.parquet"
    # A writer that does not check its strings (the format does not) can leave bytes that are not UTF-8.
    machines = pa.array([b"1", b"1\xff", b"1"], pa.binary()).view(pa.string())
    times = pa.array([at(6), at(7), at(8)], type=pa.timestamp("us"))
    parquet.write_table(pa.table({"datetime": times, "machineID": machines, "volt": [1.0, 2.0, 3.0]}), path)

    done = run(database_url, path)
    assert done.exit_code == 0, done.output
    assert "3 rows: imported 2 new messages, 0 stored already, 1 rejected" in done.stdout
    assert (
        "line 2: bad_row: column 'machineID' holds text that is not UTF-8 (invalid start byte)" in done.stderr
    )
    with engine.connect() as conn:
        assert conn.execute(select(Telemetry.ts).order_by(Telemetry.ts)).scalars().all() == [at(6), at(8)]
    assert quarantine_reasons(engine) == ["bad_row"]
