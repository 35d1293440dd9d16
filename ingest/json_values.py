"""What orjson's reading of a payload leaves unsaid: a NUL behind an escape, an integer past 64 bits."""

from __future__ import annotations

import json
import re

from ingest.schemas import Rejection

# 20 digits in a row: maybe an integer past 64 bits, which orjson reads as a rounded float.
_DIGITS = re.compile(rb"[0-9]{20}")


def has_nul(body: object) -> bool:
    """Whether a text or a key of `body` holds a NUL (the bytes `\\u0000` may be an escaped backslash)."""
    stack = [body]
    while stack:
        value = stack.pop()
        if type(value) is str:
            if "\x00" in value:
                return True
        elif type(value) is dict:
            stack.extend(value)
            stack.extend(value.values())
        elif type(value) is list:
            stack.extend(value)
    return False


def may_be_wide(payload: bytes) -> bool:
    """Whether the payload may hold an integer past 64 bits (then `wide_int` says)."""
    return _DIGITS.search(payload) is not None


def wide_int(payload: bytes, skip: str | None) -> Rejection | None:
    """An integer past 64 bits, which orjson reads as a rounded float: kept as an unknown field, it would be
    stored changed. Python's parser keeps it whole, to name it; top-level field `skip` (`readings`: floats)
    is left alone."""
    stack: list[tuple[str, object]] = [("", json.loads(payload))]
    while stack:
        where, value = stack.pop()
        if type(value) is int and not -(2**63) <= value < 2**64:
            return Rejection(
                "bad_value",
                f"{where} is an integer past 64 bits ({str(value)[:20]}…), which the store would round; "
                "send it as a string",
            )
        if type(value) is dict:
            stack.extend((f"{where}.{k}" if where else k, v) for k, v in value.items() if where or k != skip)
        elif type(value) is list:
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
    return None
