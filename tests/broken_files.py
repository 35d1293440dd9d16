"""Files a command cannot read at all, and the problem it names: for tests of file inputs."""

from __future__ import annotations

from pathlib import Path


def a_folder(path: Path) -> str:
    """A folder where the file should be."""
    path.mkdir()
    return f"{path}: file: Is a directory"


def missing(path: Path) -> str:
    """No file at all."""
    return f"{path}: file: No such file or directory"
