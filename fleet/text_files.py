"""Text files a person hands in (CSV, TOML, YAML): UTF-8 with or without a byte order mark, or refused."""

from __future__ import annotations

from fleet import errors


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
