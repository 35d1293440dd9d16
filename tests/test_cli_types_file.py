"""A command that runs the simulator, given a shipped types file that is wrong, unreadable or no YAML, says
so in one line (file, line where known, reason) and exits 2 as a bad setting does: never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from simulators.machine_types import TYPES_FILE

REPO = Path(__file__).resolve().parents[1]
SHIPPED = TYPES_FILE.read_text(encoding="utf-8")
COMMANDS = {
    "demo": ["demo"],
    "evaluate": ["evaluate", "--machines", "3", "--days", "2", "--train-days", "1"],
    "simulate": ["simulate", "fleet", "--backfill", "--machines", "3", "--days", "1"],
}


def _wrong_value(path: Path) -> str:
    path.write_text(SHIPPED.replace("noise_sd: 1.2,", "noise_sd: true,", 1), encoding="utf-8")
    return f"{path}:50: machine_types[0].simulation.sensors.flow_m3h.noise_sd: True is not a finite number"


def _not_yaml(path: Path) -> str:
    path.write_text(
        SHIPPED.replace("  - name: air_compressor", "  - name: [air_compressor", 1), encoding="utf-8"
    )
    return f"{path}:71: file: not valid YAML: expected ',' or ']', but got ':'"


def _not_utf8(path: Path) -> str:
    path.write_bytes(SHIPPED.encode().replace(b"noise_sd: 1.2,", b"noise_sd: \xff1.2,", 1))
    return f"{path}:50: file: not UTF-8 (byte 0xff); save the file as UTF-8"


def _a_folder(path: Path) -> str:
    path.mkdir()
    return f"{path}: file: Is a directory"


def _missing(path: Path) -> str:
    return f"{path}: file: No such file or directory"


BROKEN: dict[str, Callable[[Path], str]] = {
    "wrong value": _wrong_value,
    "not YAML": _not_yaml,
    "not UTF-8": _not_utf8,
    "a folder": _a_folder,
    "missing": _missing,
}


@pytest.mark.parametrize("broken", BROKEN)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_broken_shipped_types_file_is_one_line_and_exit_2(
    tmp_path: Path, command: str, broken: str
) -> None:
    """The command run on a copy of the simulators whose shipped types file is broken."""
    shutil.copytree(
        REPO / "simulators",
        tmp_path / "simulators",
        ignore=shutil.ignore_patterns("__pycache__", TYPES_FILE.name),
    )
    problem = BROKEN[broken](tmp_path / "simulators" / TYPES_FILE.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    env["SERVICECAST_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "servicecast", *COMMANDS[command]],
        cwd=tmp_path,  # the copy of `simulators` comes first on the path
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stderr.splitlines() == [f"servicecast: cannot read the machine types: {problem}"], done.stderr
    assert done.returncode == 2
