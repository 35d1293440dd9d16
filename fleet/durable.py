"""Files written to stay: on return their bytes and their names survive a power loss, not only a crash."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem


def left(name: str) -> str:
    """A regular expression of the part `write` leaves of a file whose name `name` (a regular expression)
    matches, when its process dies while it writes: nobody renames it, and only a sweep that no writer of
    such files runs beside may remove it."""
    return rf"\.{name}\.\d+\.part"


def write(fs: fsspec.AbstractFileSystem, path: str, data: bytes, *, root: str) -> None:
    """Write `data` at `path` under `root`, making its folders; durable and whole on return.

    On a local disk it is written under a hidden name beside `path` (`left`), fsynced and renamed over it,
    then each folder from its own up to `root`'s parent is fsynced (a folder's fsync makes its entries stay:
    the file's name, a new folder's); so a full disk or a crash leaves no part of it at `path`, and an older
    file there as it was. An object store's PUT is durable when it returns, and whole.
    """
    folder, name = path.rsplit("/", 1)
    fs.makedirs(folder, exist_ok=True)
    if not isinstance(fs, LocalFileSystem):
        fs.pipe_file(path, data)
        return
    part = f"{folder}/.{name}.{os.getpid()}.part"
    try:
        with open(part, "wb") as out:
            out.write(data)
            sync(out)
        os.replace(part, path)
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise
    sync_folders(Path(folder), top=Path(root).parent)


def sync(out: BinaryIO) -> None:
    """Flush and fsync an open local file: its bytes stay, its name not yet (`sync_folders`)."""
    out.flush()
    os.fsync(out.fileno())


def sync_folders(folder: Path, *, top: Path) -> None:
    """Fsync `folder` and each of its parents up to `top`: the names they hold stay."""
    for at in [folder, *folder.parents]:
        handle = os.open(at, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
        if at == top or top not in at.parents:
            break


def remove(fs: fsspec.AbstractFileSystem, path: str, *, root: str) -> None:
    """Remove the file at `path` under `root` if it is there; on a local disk its folder is fsynced, so that
    the name does not come back after a power loss."""
    if not isinstance(fs, LocalFileSystem):
        if fs.exists(path):
            fs.rm_file(path)
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    sync_folders(Path(path).parent, top=Path(root).parent)
