"""Text files a person hands in (CSV, TOML, YAML): UTF-8 with or without a byte order mark, or refused."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from fleet import errors
from fleet.type_checks import Problem, compose_yaml

# Types, catalog, mapping and map files are settings a person writes: the shipped ones are under 10 kB.
MAX_BYTES = 16 * 2**20


class NotUtf8(errors.InvalidInput):
    """A file that is not UTF-8 text; `line` is where its first byte that is not UTF-8 is."""

    def __init__(self, line: int, byte: int) -> None:
        self.line = line
        self.reason = f"not UTF-8 (byte {byte:#04x}); save the file as UTF-8"
        super().__init__(f"line {line}: {self.reason}")


def decode(raw: bytes) -> str:
    """The text of a UTF-8 file, a byte order mark dropped (Excel and Notepad write one)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotUtf8(raw[: exc.start].count(b"\n") + 1, raw[exc.start]) from None


def lines(stream: BinaryIO, limit: int) -> Iterator[str | None]:
    """Each line of a UTF-8 stream with its line end (a byte order mark dropped), or None for one longer than
    `limit` characters, read in pieces and dropped: memory stays within `limit`. Closes the stream."""
    number = 0  # lines read whole
    with io.TextIOWrapper(stream, encoding="utf-8-sig", newline="") as text:
        try:
            while line := text.readline(limit + 1):
                long = len(line) > limit
                while long and not line.endswith(("\n", "\r")) and (line := text.readline(limit)):
                    pass
                yield None if long else line
                number += 1
        except UnicodeDecodeError as exc:  # the bytes it could not decode begin after the lines read
            raise NotUtf8(number + 1 + exc.object[: exc.start].count(b"\n"), exc.object[exc.start]) from None


class FileProblem(errors.InvalidInput):
    """A file that cannot be read as text or YAML; `problem` names it, the line where known and why."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))

    @property
    def reason(self) -> str:
        """What is wrong, with its line where known, for a message that names the file itself."""
        line = self.problem.line
        return f"line {line}: {self.problem.message}" if line else self.problem.message


def read(path: Path, limit: int = MAX_BYTES) -> str:
    """The text of a file a person hands in, or `FileProblem`: missing, a folder, unreadable, larger than
    `limit` bytes (read no further: /dev/zero or a wrong file would fill the memory), not UTF-8."""
    try:
        with Path(path).open("rb") as stream:
            raw = stream.read(limit + 1)
    except OSError as exc:
        raise FileProblem(Problem(str(path), None, "file", exc.strerror or str(exc))) from None
    if len(raw) > limit:
        raise FileProblem(Problem(str(path), None, "file", f"larger than {limit:,} bytes, not read"))
    try:
        return decode(raw)
    except NotUtf8 as exc:
        raise FileProblem(Problem(str(path), exc.line, "file", exc.reason)) from None


def read_yaml(path: Path) -> Any:
    """The data of a YAML file a person hands in (a map), or `FileProblem` naming its first problem: the
    ones of `read`, not YAML, a key given twice, nesting or aliases past the limits types files have."""
    _, data, _, problems = compose_yaml(read(path), str(path))
    if problems:
        raise FileProblem(problems[0])
    return data
