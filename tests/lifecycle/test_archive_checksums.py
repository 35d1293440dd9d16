"""Page checksums: a flipped byte in an archive file is an error naming it, never wrong values read."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from fleet import archive, archive_format, history
from tests.lifecycle import support


@pytest.mark.expect_logged_errors
def test_a_flipped_byte_in_an_archive_file_is_an_error_naming_the_file(sqlite_engine, tmp_path):
    url, machines, path = support.archived_file(sqlite_engine, tmp_path)
    support.flip_a_byte_of_the_vibration_column(path)
    # Before: no page checksum, the zstd page decoded to other values and the read returned them.
    support.reads_refuse(sqlite_engine, url, machines, path, saying="checksum")


def test_a_file_written_without_page_checksums_still_reads(sqlite_engine, tmp_path):
    url, machines, path = support.archived_file(sqlite_engine, tmp_path)
    with sqlite_engine.connect() as conn:
        expected = history.read_rows(conn, machine_ids=machines, archive_url=url)
    table = pq.read_table(path)
    old = {k: v for k, v in archive_format.write_options(table).items() if k != "write_page_checksum"}
    pq.write_table(table, path, **old)  # as archive files were written before checksums
    with sqlite_engine.connect() as conn:
        archive.check_readable(conn, customer_id=1, url=url)
        again = history.read_rows(conn, machine_ids=machines, archive_url=url)
    for column in history.ROW_COLUMNS:
        assert again[column].tolist() == expected[column].tolist(), column
