"""Strict JSON for request bodies: one reading for every parser on the way, so nothing ambiguous is stored.

Python's `json` takes the last of duplicate keys, NaN and Infinity, a number too small for a float as 0, and
any depth its stack allows (a RecursionError, a 500, past it); a proxy or the CRM's own tooling may read the
same bytes otherwise.
"""

from __future__ import annotations

import json
import math
import re

# The API's bodies nest three levels at most; a CRM's extra fields get room.
MAX_DEPTH = 32
# int() refuses more digits than sys.get_int_max_str_digits() (4,300) with a plain ValueError.
LONG_INTEGER = re.compile(r"integer string conversion: value has ([0-9]+) digits")


class BadJson(ValueError):
    """The body is not strict JSON; the message says why."""


class NotJson(BadJson):
    """The body is no JSON at all."""


def loads(body: bytes) -> object:
    """The body parsed: UTF-8 (a byte order mark skipped), no duplicate keys, no NaN or Infinity (written or
    by overflow), no number beyond a float's range or int()'s digits, nested at most MAX_DEPTH levels."""
    try:
        # A byte order mark is skipped, as FastAPI's reading does (RFC 8259 allows it): read as no JSON here,
        # its body went past the NUL check.
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise BadJson(problem(exc)) from None
    try:
        value = json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError as exc:
        raise BadJson(problem(exc)) from None
    except json.JSONDecodeError as exc:
        raise NotJson(f"not JSON: {exc}") from None
    except ValueError as exc:
        raise BadJson(problem(exc) or str(exc)) from None
    if _depth(value) > MAX_DEPTH:
        raise BadJson(problem(RecursionError()))
    return value


def problem(exc: BaseException | None) -> str | None:
    """What a body failing to parse with `exc` (FastAPI's own reading) has wrong, or None if not known."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 (byte {exc.start})"
    if isinstance(exc, RecursionError):
        return f"nested deeper than {MAX_DEPTH} levels"
    if isinstance(exc, ValueError) and (digits := LONG_INTEGER.search(str(exc))):
        return f"a whole number of {digits[1]} digits is out of range"
    return None


def _unique(pairs: list[tuple[str, object]]) -> dict:
    found: dict = {}
    for key, value in pairs:
        if key in found:
            raise BadJson(f"duplicate key {key!r}")
        found[key] = value
    return found


def _no_constant(name: str) -> object:
    raise BadJson(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    # Too small for a float, 1e-400 becomes 0.0: a won amount of nothing.
    if math.isinf(value) or (value == 0 and text.lower().partition("e")[0].strip("-0.")):
        raise BadJson(f"{text} is out of range")
    return value


def _depth(value: object) -> int:
    """How many arrays and objects deep `value` goes (a loop: it may go deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((inner, level + 1) for inner in (item.values() if isinstance(item, dict) else item))
    return deepest
