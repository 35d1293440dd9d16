"""Files written to stay: on return their bytes and their names survive a power loss, not only a crash."""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem


def write(fs: fsspec.AbstractFileSystem, path: str, data: bytes, *, root: str) -> None:
    """Write `data` at `path` under `root`, making its folders; durable on return.

    On a local disk the file is fsynced, then each folder from its own up to `root`'s parent (a folder's
    fsync makes its entries stay: the file's name, a new folder's). An object store's PUT is durable when it
    returns.
    """
    folder = path.rsplit("/", 1)[0]
    fs.makedirs(folder, exist_ok=True)
    if not isinstance(fs, LocalFileSystem):
        fs.pipe_file(path, data)
        return
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    top = Path(root).parent
    for at in [Path(folder), *Path(folder).parents]:
        _sync_folder(at)
        if at == top or top not in at.parents:
            break


def _sync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
