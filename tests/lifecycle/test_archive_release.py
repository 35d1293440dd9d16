"""A failed archive read lets go of its pyarrow readers at once, not when the interpreter finalizes.

A CLI keeps the error until it exits (`raise fail(…) from None` still has it as the context); a reader it
held, torn down during finalization, can abort the process ("terminate called without an active exception",
apache/arrow#34314, #45017) after the error line, exit 134 instead of 1.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from sqlalchemy import select

from fleet import archive, errors
from fleet.tables import Customer
from tests.lifecycle import support


def _pyarrow_readers() -> list[str]:
    """The kinds of pyarrow file reader and dataset object alive in this process."""
    gc.collect()
    kinds = {type(o) for o in gc.get_objects()}  # one pass over the heap: each kind here has an instance
    return sorted(
        f"{kind.__module__}.{kind.__name__}"
        for kind in kinds
        if str(kind.__module__).startswith(("pyarrow._parquet", "pyarrow._dataset", "pyarrow.parquet"))
    )


def _damage(path: Path, how: str) -> None:
    if how == "truncated":
        with open(path, "r+b") as damaged:
            damaged.truncate(100)
    else:
        support.flip_a_byte_of_the_vibration_column(path)


@pytest.mark.parametrize("how", ["truncated", "flipped"])
@pytest.mark.parametrize("read", ["check_readable", "read"])
def test_an_unreadable_archive_file_leaves_no_pyarrow_reader_behind(how, read, sqlite_engine, tmp_path):
    url, machines, path = support.archived_file(sqlite_engine, tmp_path)
    _damage(path, how)
    before = _pyarrow_readers()
    with sqlite_engine.connect() as conn, pytest.raises(errors.ArchiveUnreadable) as kept:
        if read == "check_readable":
            archive.check_readable(conn, customer_id=conn.scalar(select(Customer.id)), url=url)
        else:
            archive.read(conn, url=url, machine_ids=machines)
    assert kept.value is not None  # the error is still held, as a CLI holds it to its exit
    assert _pyarrow_readers() == before
