"""`servicecast telemetry import` of hostile Parquet files: a decompression bomb, floats in seq."""

from __future__ import annotations

import tracemalloc

import pyarrow as pa
from pyarrow import parquet
from sqlalchemy import select

from fleet import parquet_bounds
from fleet.tables import Telemetry
from ingest.contract import parse_message
from tests.fleet.test_telemetry_import import at, run
from tests.ingest.support import quarantine_reasons, register_fleet


def test_a_parquet_row_group_that_would_inflate_past_the_bound_is_refused_unread_and_the_others_stored(
    database_url, engine, tmp_path
):
    register_fleet(engine, "acme", ["1"])
    path = tmp_path / "telemetry.parquet"
    huge = "x" * (parquet_bounds.MAX_INFLATED_BYTES + 1)  # a few KB of zstd
    schema = pa.schema([("datetime", pa.timestamp("us")), ("machineID", pa.string()), ("note", pa.string())])
    with parquet.ParquetWriter(path, schema, compression="zstd") as out:
        for hours, note in [([6, 7], None), ([8], huge), ([9], None)]:
            rows = {
                "datetime": [at(h) for h in hours],
                "machineID": ["1"] * len(hours),
                "note": [note] * len(hours),
            }
            out.write_table(pa.table(rows, schema=schema))
    del huge, rows
    assert path.stat().st_size < 2**20

    tracemalloc.start()
    try:
        done = run(database_url, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert done.exit_code == 0, done.output
    assert "4 rows: imported 3 new messages, 0 stored already, 1 rejected" in done.stdout
    # Before: the value was decoded (a str of 64 MiB, a 300 MiB one peaked at GBs), then refused as too long.
    assert peak < parquet_bounds.MAX_INFLATED_BYTES // 4
    assert "line 3: bad_row: column 'note' of row group 1 would decompress " in done.stderr
    with engine.connect() as conn:
        assert conn.execute(select(Telemetry.ts).order_by(Telemetry.ts)).scalars().all() == [
            at(6),
            at(7),
            at(9),
        ]
    assert quarantine_reasons(engine) == ["bad_row"]


def test_a_float_seq_is_refused_as_the_float_the_file_holds_as_over_mqtt(database_url, engine, tmp_path):
    register_fleet(engine, "acme", ["1"])
    parquet_path, csv_path = tmp_path / "telemetry.parquet", tmp_path / "telemetry.csv"
    times = pa.array([at(6), at(7), at(8)], type=pa.timestamp("us"))
    seqs = pa.array([5.0, float("nan"), 7.0], pa.float64())  # pandas writes an int column with a gap so
    parquet.write_table(pa.table({"datetime": times, "machineID": ["1"] * 3, "seq": seqs}), parquet_path)
    csv_path.write_text("datetime,machineID,seq\n2015-01-01 09:00:00,1,5.0\n2015-01-01 10:00:00,1,NaN\n")
    # The contract decides: over MQTT a seq of 5.0 is a float, refused, and JSON holds no NaN.
    mqtt = parse_message(
        "fleet/acme/1/telemetry", b'{"v":1,"seq":5.0,"ts":"2015-01-01T06:00:00Z","readings":{}}'
    )
    assert mqtt.detail == "seq must be an integer, got float 5.0"

    done = run(database_url, parquet_path)
    # Before: "seq must be an integer, got str": the file's float went to the contract as its text.
    assert "3 rows: imported 0 new messages, 0 stored already, 3 rejected" in done.stdout, done.output
    assert f"line 1: wrong_type: {mqtt.detail}\n" in done.stderr
    assert "line 2: wrong_type: seq must be an integer, got float nan\n" in done.stderr
    assert "line 3: wrong_type: seq must be an integer, got float 7.0\n" in done.stderr
    done = run(database_url, csv_path)
    assert "2 rows: imported 0 new messages, 0 stored already, 2 rejected" in done.stdout, done.output
    assert f"line 2: wrong_type: {mqtt.detail}\n" in done.stderr
    assert "line 3: wrong_type: seq must be an integer, got float nan\n" in done.stderr
    with engine.connect() as conn:
        assert conn.execute(select(Telemetry.ts)).scalars().all() == []
    assert quarantine_reasons(engine) == ["wrong_type"] * 5
