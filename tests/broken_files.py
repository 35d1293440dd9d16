"""Files a command cannot read at all, and the problem it names: for tests of file inputs."""

from __future__ import annotations

from pathlib import Path

from fleet import text_files


def a_folder(path: Path) -> str:
    """A folder where the file should be."""
    path.mkdir()
    return f"{path}: file: Is a directory"


def missing(path: Path) -> str:
    """No file at all."""
    return f"{path}: file: No such file or directory"


def too_large(path: Path) -> str:
    """A (sparse) file one byte larger than a settings file may be."""
    with path.open("wb") as stream:
        stream.truncate(text_files.MAX_BYTES + 1)
    return f"{path}: file: larger than {text_files.MAX_BYTES:,} bytes, not read"
