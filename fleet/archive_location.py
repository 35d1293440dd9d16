"""Where archive files live, without the Parquet machinery of `fleet.archive`: every command that reads or
writes customer data reads the erasure ledger here as it starts (`erasure_ledger.check_start`), and pandas and
pyarrow would add some 100 MB and 0.4 s to an ingester that needs neither."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import fsspec


@dataclass(frozen=True)
class Location:
    """Where archive files live: an fsspec filesystem and the root path within it."""

    fs: fsspec.AbstractFileSystem
    root: str

    def path(self, relative: str) -> str:
        """The filesystem path of a file registered by its `relative` path."""
        return f"{self.root.rstrip('/')}/{relative}"


@lru_cache(maxsize=8)
def location(url: str) -> Location:
    """The archive at `url`: a folder (relative to the working directory) or any fsspec URL."""
    if "://" not in url:
        url = str(Path(url).resolve())
    fs, root = fsspec.core.url_to_fs(url)
    return Location(fs, root)
