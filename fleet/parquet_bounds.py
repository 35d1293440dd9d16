"""A Parquet file from outside, judged by its footer before a page is read: a decompression bomb."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a hint only: a CSV import that loads this module pays nothing for pyarrow
    import pyarrow.parquet as pq

# A decompression bomb: a few KB of zstd that inflate to GBs (a 10 KB file, one 300 MB text value: 1 GB read).
# The archive's own files stay far below both bounds at once: a constant float sensor packs 1:~1000 in
# 800 KB a row group, and the chunks past 64 MB are long distinct texts, which pack a few to one.
MAX_INFLATED_BYTES = 64 * 2**20
MAX_INFLATION = 1000


def bomb(metadata: pq.FileMetaData, groups: Iterable[int] | None = None) -> str | None:
    """What of row `groups` (all by default) the footer says inflates to more than MAX_INFLATED_BYTES at more
    than MAX_INFLATION times its packed size: a column chunk, or their sum; None when nothing does."""
    groups = range(metadata.num_row_groups) if groups is None else list(groups)
    total = packed = 0
    for g in groups:
        group = metadata.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            size, stored = chunk.total_uncompressed_size, chunk.total_compressed_size
            if _inflates(size, stored):
                what = f"column {chunk.path_in_schema!r} of row group {g}"
                return f"{what} would decompress {stored:,} bytes to {size:,}"
            total, packed = total + size, packed + stored
    if not _inflates(total, packed):
        return None
    whole = f"row group {groups[0]}" if len(groups) == 1 else "the file"
    return f"the columns of {whole} would decompress {packed:,} bytes to {total:,}"


def _inflates(size: int, stored: int) -> bool:
    return size > MAX_INFLATED_BYTES and size > MAX_INFLATION * max(stored, 1)
