"""An export's ZIP in a folder: written under a hidden name its writer locks, then published whole under a
name no other file has; the hidden files that killed exports left are removed by the next export into it."""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from fleet import durable

PREFIX = "servicecast-export-"


@contextmanager
def writing(directory: Path) -> Iterator[BinaryIO]:
    """A new hidden file, locked while this export writes it, removed unless `publish`ed."""
    # Named before it exists: a Ctrl-C at any point, even as it is made, finds the file to remove.
    partial = directory / f".{PREFIX}{secrets.token_hex(8)}.partial"
    try:
        with partial.open("xb") as out:
            fcntl.flock(out, fcntl.LOCK_EX)  # held until closed: `remove_killed` leaves a live export's file
            yield out
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def publish(out: BinaryIO, directory: Path, stem: str) -> Path:
    """Give the written file the first free name of `stem`.zip, `stem`-2.zip, …: never another's file.

    The name shows the whole file from its first instant: the hidden file is linked to it (a link, unlike a
    rename, fails on a taken name), then its hidden name removed; a kill between leaves the hidden name to
    `remove_killed`. Durable on return, its bytes and its name (the caller reports it complete): fsynced,
    linked, then the folder fsynced, and its parent, which holds the folder's own name if the export made it.
    """
    durable.sync(out)
    n = 1
    while True:
        path = directory / (f"{stem}.zip" if n == 1 else f"{stem}-{n}.zip")
        try:
            _name(out.name, path)
        except FileExistsError:
            n += 1
            continue
        durable.sync_folders(directory, top=directory.parent)
        return path


def _name(partial: str, path: Path) -> None:
    """Give the file at `partial` the name `path` instead, FileExistsError if `path` is taken."""
    try:
        os.link(partial, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        # A file system without hard links (FAT): the name is claimed empty, then replaced; a kill between
        # leaves an empty ZIP there, the one case where a name shows an unfinished export.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        try:
            os.replace(partial, path)
        except BaseException:
            path.unlink()
            raise
        return
    os.unlink(partial)


_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def remove_killed(directory: Path) -> list[str]:
    """Remove the hidden files of exports that were killed (no process holds their lock); their names."""
    removed = []
    for partial in sorted(directory.glob(f".{PREFIX}*.partial")):
        try:
            with partial.open("rb") as held:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if not os.fstat(held.fileno()).st_size:
                    continue  # holds nothing, and may be one an export made and has not locked yet
                partial.unlink()
        except (BlockingIOError, FileNotFoundError):  # being written, or gone meanwhile
            continue
        removed.append(partial.name)
    return removed
