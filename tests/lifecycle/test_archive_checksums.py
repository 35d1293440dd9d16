"""Page checksums: a flipped byte in an archive file is an error naming it, never wrong values read."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from fleet import archive, archive_format, errors, history
from fleet.tables import ArchiveFile
from tests.lifecycle import support


def _archived(engine, tmp_path) -> tuple[str, list[int], Path]:
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(3000)))
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=30))
    with engine.connect() as conn:
        relative = conn.scalar(select(ArchiveFile.path).order_by(ArchiveFile.id))
    return url, [ids["p1"][1]], Path(url) / relative


def _flip_a_byte_of_the_vibration_column(path: Path) -> None:
    """One byte inside the float sensor's compressed values: the footer and every page header stay sound."""
    meta = pq.read_metadata(path).row_group(0)
    chunk = next(
        meta.column(i)
        for i in range(meta.num_columns)
        if meta.column(i).path_in_schema.endswith("vibration_mm_s")
    )
    with open(path, "r+b") as f:
        f.seek(chunk.data_page_offset + chunk.total_compressed_size - 40)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x10]))


@pytest.mark.expect_logged_errors
def test_a_flipped_byte_in_an_archive_file_is_an_error_naming_the_file(sqlite_engine, tmp_path):
    url, machines, path = _archived(sqlite_engine, tmp_path)
    _flip_a_byte_of_the_vibration_column(path)
    with sqlite_engine.connect() as conn:
        # Before: no page checksum, the zstd page decoded to other values and the read returned them.
        with pytest.raises(errors.ArchiveUnreadable, match=path.name) as read:
            history.read_rows(conn, machine_ids=machines, archive_url=url)
        assert "checksum" in read.value.one_line()
        with pytest.raises(errors.ArchiveUnreadable, match=path.name):
            archive.check_readable(conn, customer_id=1, url=url)


def test_a_file_written_without_page_checksums_still_reads(sqlite_engine, tmp_path):
    url, machines, path = _archived(sqlite_engine, tmp_path)
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
