"""Shared helpers for benchmark output."""

from __future__ import annotations


def round_floats(value: object, digits: int = 3) -> object:
    """Floats rounded, recursively through dicts and lists, for a readable report."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: round_floats(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [round_floats(v, digits) for v in value]
    return value
