"""An export's ZIP in a folder: written under a hidden name its writer locks, then published under a name no
other file has; the hidden files that killed exports left are removed by the next export into the folder."""

from __future__ import annotations

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

    Durable on return, its bytes and its name (the caller reports it complete): fsynced, renamed, then the
    folder fsynced, and its parent, which holds the folder's own name if the export made it.
    """
    durable.sync(out)
    n = 1
    while True:
        path = directory / (f"{stem}.zip" if n == 1 else f"{stem}-{n}.zip")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))  # the name is ours from here
        except FileExistsError:
            n += 1
            continue
        try:
            os.replace(out.name, path)
        except BaseException:
            path.unlink()
            raise
        durable.sync_folders(directory, top=directory.parent)
        return path


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
