"""A file that changes between an import's reads, as a writer would change it while it is imported."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.fleet.test_import_bounds import write

Change = Callable[[list[str]], list[str]]  # the file's lines → the lines it has once changed


def change_after_first_read(
    monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str, path: Path, change: Change
) -> None:
    """Make `module.name`, what an import reads `path` with first, change the file once that read is done
    (returned, or its rows all taken): the import's next read meets the changed file."""
    read = getattr(module, name)
    calls = 0

    def read_then_change(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        found = read(*args, **kwargs)
        if calls > 1:
            return found
        if isinstance(found, Iterator):
            return _then(found, path, change)
        _change(path, change)
        return found

    monkeypatch.setattr(module, name, read_then_change)


def _then(rows: Iterator, path: Path, change: Change) -> Iterator:
    yield from rows
    _change(path, change)


def _change(path: Path, change: Change) -> None:
    write(path, *change(path.read_text().splitlines()))
