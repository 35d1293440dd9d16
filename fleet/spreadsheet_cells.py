"""Text a spreadsheet would run as a formula (OWASP's CSV injection list): one rule for every CSV we write."""

from __future__ import annotations

import re

# A cell starting with one of these runs as a formula, unless it is a plain number (`-1`, `+41`, `1e-05`).
FORMULA_START = r"^[=+\-@\t\r]"
# Arrow's RE2 reads `$` as the end of the text; Python's re also before a last newline, so here the pattern's
# body is matched whole instead: `-1\n` is no plain number for either.
PLAIN_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_START = re.compile(FORMULA_START)
_NUMBER_BODY = re.compile(PLAIN_NUMBER.removeprefix("^").removesuffix("$"))


def as_text(cell: str) -> str:
    """The cell as a spreadsheet shows text: one it would take for a formula gets a leading `'`."""
    return "'" + cell if _START.match(cell) and not _NUMBER_BODY.fullmatch(cell) else cell
