"""A hostile archive file: a few KB that decompress to hundreds of MB are refused unread, named."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fleet import archive_format, parquet_bounds
from tests.lifecycle import support


@pytest.mark.expect_logged_errors
def test_a_file_with_one_huge_compressible_value_is_refused_before_it_is_inflated(sqlite_engine, tmp_path):
    url, machines, path = support.archived_file(sqlite_engine, tmp_path)
    table = pq.read_table(path)
    huge = ["x" * (parquet_bounds.MAX_INFLATED_BYTES + 1), *table.column("fw").to_pylist()[1:]]
    table = table.set_column(table.schema.get_field_index("fw"), "fw", pa.array(huge, pa.string()))
    pq.write_table(table, path, **archive_format.write_options(table))
    assert path.stat().st_size < 2**20  # far less than what it decompresses to
    # Before: read whole, the value decompressed in memory (a 300 MB one took 1 GB), and returned.
    support.reads_refuse(sqlite_engine, url, machines, path, saying="decompress")
