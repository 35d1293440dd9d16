"""Every setting is a row of the README's Configuration table, and every row a setting with its default."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from fleet.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def rows(readme: str) -> list[tuple[list[str], list[str]]]:
    """Each row's variables and default cells; a short form (`…_COUNT`, `_TIMEOUT_S`) is spelled out from the
    row's first full name as the one setting it can be, else left as written."""
    table = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    out = []
    for names_cell, defaults_cell in re.findall(r"^\| (`SERVICECAST_.+?) \| (.+?) \|", table, re.MULTILINE):
        codes = re.findall(r"`([^`]+)`", names_cell)
        names = []
        for code in codes:
            short = code.lstrip("…")
            spelled = {codes[0][: i + 1].rstrip("_") + short for i, ch in enumerate(codes[0]) if ch == "_"}
            real = [name for name in spelled if field(name) in Settings.model_fields]
            names.append(code if code.startswith("SERVICECAST_") or len(real) != 1 else real[0])
        defaults = re.split(r" / |, ", defaults_cell)
        out.append((names, defaults * len(names) if len(defaults) == 1 else defaults))
    return out


def field(name: str) -> str:
    """The `Settings` field a variable sets."""
    return name.removeprefix("SERVICECAST_").lower()


def as_written(value: object) -> str | None:
    """A default as the table writes it in backticks; None for a setting that is unset by default."""
    if value in (None, ()):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def test_every_setting_is_in_the_readmes_configuration_table():
    expected = {f"SERVICECAST_{name.upper()}" for name in Settings.model_fields}
    documented = {name for names, _ in rows(README.read_text(encoding="utf-8")) for name in names}
    missing = sorted(expected - documented)
    assert not missing, f"not in README's Configuration table: {missing}"


def test_every_row_is_a_setting_with_the_default_it_states():
    """A default in backticks is the field's default as written; unset, forever or words mean none."""
    wrong = []
    for names, defaults in rows(README.read_text(encoding="utf-8")):
        if len(names) != len(defaults):
            wrong.append(f"{names}: {len(defaults)} defaults")
            continue
        for name, cell in zip(names, defaults, strict=True):
            if field(name) not in Settings.model_fields:
                wrong.append(f"{name}: no such setting")
                continue
            stated = re.match(r"`([^`]*)`", cell)
            actual = as_written(Settings.model_fields[field(name)].default)
            if (stated.group(1) if stated else None) != actual:
                wrong.append(f"{name}: the table says {cell!r}, the default is {actual!r}")
    assert not wrong, "README's Configuration table: " + "; ".join(wrong)
