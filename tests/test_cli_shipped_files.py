"""A command that reads a shipped file as it starts (the simulator's types file, the service catalog), given
one that is wrong, unreadable or no YAML, says so in one line (file, line where known, reason) and exits 2
as a bad setting does: never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.catalog import DEFAULT_FILE as CATALOG_FILE
from simulators.machine_types import TYPES_FILE
from tests import broken_files
from tests.services import MigratedTemplates

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Shipped:
    """A file shipped inside a package, a value in it to break and what a wrong one is called."""

    path: Path
    old: str
    wrong: str
    problem: str
    what: str

    def line_of(self, text: str) -> int:
        """The line of the value this case breaks."""
        source = self.path.read_text(encoding="utf-8")
        return source.count("\n", 0, source.index(text)) + 1


TYPES = Shipped(
    TYPES_FILE,
    "noise_sd: 1.2,",
    "noise_sd: true,",
    "machine_types[0].simulation.sensors.flow_m3h.noise_sd: True is not a finite number",
    "cannot read the machine types",
)
CATALOG = Shipped(
    CATALOG_FILE,
    "offer_expiry_days: 30",
    "offer_expiry_days: true",
    'offer_expiry_days: Value error, must be a whole number (as 42, not true, false or "42")',
    "cannot read the catalog",
)
COMMANDS = {
    "demo": (TYPES, ["demo"]),
    "evaluate": (TYPES, ["evaluate", "--machines", "3", "--days", "2", "--train-days", "1"]),
    "simulate": (TYPES, ["simulate", "fleet", "--backfill", "--machines", "3", "--days", "1"]),
    "demo (catalog)": (CATALOG, ["demo"]),
    "policy": (CATALOG, ["policy", "--once"]),
    "catalog list": (CATALOG, ["catalog", "list"]),
    "catalog show": (CATALOG, ["catalog", "show"]),
}


def _wrong_value(shipped: Shipped, path: Path) -> str:
    path.write_text(shipped.path.read_text(encoding="utf-8").replace(shipped.old, shipped.wrong, 1), "utf-8")
    return f"{path}:{shipped.line_of(shipped.old)}: {shipped.problem}"


def _not_yaml(shipped: Shipped, path: Path) -> str:
    path.write_text(shipped.path.read_text(encoding="utf-8") + "\nlast: [\n", "utf-8")
    end = shipped.path.read_text(encoding="utf-8").count("\n") + 3
    return f"{path}:{end}: file: not valid YAML: expected the node content, but found '<stream end>'"


def _not_utf8(shipped: Shipped, path: Path) -> str:
    old = shipped.old.encode()
    path.write_bytes(shipped.path.read_bytes().replace(old, b"\xff" + old, 1))
    return f"{path}:{shipped.line_of(shipped.old)}: file: not UTF-8 (byte 0xff); save the file as UTF-8"


BROKEN: dict[str, Callable[[Shipped, Path], str]] = {
    "wrong value": _wrong_value,
    "not YAML": _not_yaml,
    "not UTF-8": _not_utf8,
    "a folder": lambda _shipped, path: broken_files.a_folder(path),
    "missing": lambda _shipped, path: broken_files.missing(path),
}


# Every way to break a file on one command per file, and every command on one way: the commands share the
# one reader and the one handler, and each case is a Python start (~3 s of CPU), so the 35 pairs would add
# little but time.
CASES = [("demo", broken) for broken in BROKEN] + [("catalog list", broken) for broken in BROKEN]
CASES += [(command, "wrong value") for command in COMMANDS if (command, "wrong value") not in CASES]


@pytest.mark.parametrize(("command", "broken"), CASES)
def test_a_broken_shipped_file_is_one_line_and_exit_2(
    tmp_path: Path, migrated_templates: MigratedTemplates, command: str, broken: str
) -> None:
    """The command run on a copy of the package whose shipped file is broken, on a migrated database: the
    catalog commands migrate an empty one before they read the file (~0.5 CPU-s a start)."""
    shipped, args = COMMANDS[command]
    package = shipped.path.parent.name
    ignore = shutil.ignore_patterns("__pycache__", shipped.path.name)
    shutil.copytree(REPO / package, tmp_path / package, ignore=ignore)
    problem = BROKEN[broken](shipped, tmp_path / package / shipped.path.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    migrated_templates.copy_sqlite(tmp_path / "cli.db")
    env["SERVICECAST_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "servicecast", *args],
        cwd=tmp_path,  # the copy of the package comes first on the path
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stderr.splitlines() == [f"servicecast: {shipped.what}: {problem}"], done.stderr
    assert done.returncode == 2
