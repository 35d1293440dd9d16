"""Every setting is a row of the README's Configuration table: a new user finds each variable in one place."""

from __future__ import annotations

import re
from pathlib import Path

from fleet.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def documented(readme: str) -> set[str]:
    """The variables the Configuration table names, its short forms (`…_COUNT`, `_TIMEOUT_S`) spelled out from
    the first full name in the same cell."""
    table = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in re.findall(r"^\| (.+?) \|", table, re.MULTILINE):
        codes = re.findall(r"`([^`]+)`", row)
        full = [c for c in codes if c.startswith("SERVICECAST_")]
        names.update(full)
        for short in (c.lstrip("…") for c in codes if re.fullmatch(r"…?_[A-Z0-9_]+", c)):
            stem = full[0]
            names.update(stem[: i + 1].rstrip("_") + short for i, ch in enumerate(stem) if ch == "_")
    return names


def test_every_setting_is_in_the_readmes_configuration_table():
    expected = {f"SERVICECAST_{name.upper()}" for name in Settings.model_fields}
    missing = sorted(expected - documented(README.read_text(encoding="utf-8")))
    assert not missing, f"not in README's Configuration table: {missing}"
