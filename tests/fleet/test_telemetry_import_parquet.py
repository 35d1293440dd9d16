"""`servicecast telemetry import` of hostile Parquet files: a decompression bomb, floats in seq."""

from __future__ import annotations

import tracemalloc

import pyarrow as pa
from pyarrow import parquet
from sqlalchemy import select

from fleet import parquet_bounds
from fleet.tables import Telemetry
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
