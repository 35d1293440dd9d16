"""Values of a YAML or TOML file that parse but cannot be built: a date 2026-02-30, a 5,000-digit number."""

from __future__ import annotations

import re
import sys

import yaml

# Python turns no text of more digits into an int (CVE-2020-10735); YAML and tomllib then raise ValueError.
_MAX_DIGITS = sys.get_int_max_str_digits() or sys.int_info.default_max_str_digits
_LONG_NUMBER = re.compile(rf"\d[\d_]{{{_MAX_DIGITS},}}")
_SHOWN = 40  # characters of a bad value a message quotes


def too_large(digits: int) -> str:
    """Why a whole number of `digits` digits is refused."""
    return f"a number of {digits} digits is too large"


def long_number(text: str) -> tuple[int, str] | None:
    """The line of the first number in `text` with more digits than Python reads, and why (else None)."""
    found = _LONG_NUMBER.search(text)
    if found is None:
        return None
    digits = sum(c.isdigit() for c in found.group())
    return text.count("\n", 0, found.start()) + 1, too_large(digits)


def unbuildable(node: yaml.Node, path: tuple = ()) -> tuple[tuple, yaml.Node, str] | None:
    """The field path, node and reason of the first scalar under `node` that YAML cannot build, else None.

    Construction errors carry no line; building each scalar on its own finds it. `node` is sized and its
    depth bounded before (`type_checks.compose_yaml`), so this recursion ends.
    """
    if isinstance(node, yaml.ScalarNode):
        try:
            yaml.SafeLoader("").construct_object(node)
        except Exception as exc:  # noqa: BLE001 - ValueError, AttributeError …: each a value YAML cannot build
            return path, node, _reason(node, exc)
        return None
    if isinstance(node, yaml.MappingNode):
        pairs = [((path + (key.value,)), value) for key, value in node.value]
        pairs += [(path, key) for key, _ in node.value]
    else:
        pairs = [(path + (i,), item) for i, item in enumerate(node.value)]
    for at, child in pairs:
        found = unbuildable(child, at)
        if found:
            return found
    return None


def _reason(node: yaml.ScalarNode, exc: Exception) -> str:
    kind = node.tag.rsplit(":", 1)[-1]
    digits = sum(c.isdigit() for c in node.value)
    if kind == "int" and digits > _MAX_DIGITS:
        return too_large(digits)
    shown = node.value if len(node.value) <= _SHOWN else node.value[:_SHOWN] + "…"
    why = f" ({exc})" if isinstance(exc, ValueError) else ""
    hint = "" if node.style in ("'", '"') else "; quote it if it is text"
    return f"{shown!r} is not a valid {kind}{why}{hint}"
