"""A map file (`bridge opcua --map`, `sparkplug --map`) that cannot be read, is not UTF-8 or is not YAML is
one line naming the file, the line where known and why, and exit 2 as a bad setting: never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from servicecast.cli import app
from tests import broken_files

MAP = "tenant: acme\nmachine: press-7\nvariables:\n  - {node: 'ns=2;s=Temp', sensor: temperature_c}\n"
COMMANDS = {
    "opcua": (["bridge", "opcua", "--endpoint", "opc.tcp://127.0.0.1:9", "--map"], "cannot read map"),
    "sparkplug": (["sparkplug", "--map"], "cannot read the Sparkplug map"),
}


def _not_utf8(path: Path) -> str:
    path.write_bytes(MAP.encode().replace(b"press-7", b"press-\xe97"))
    return f"{path}:2: file: not UTF-8 (byte 0xe9); save the file as UTF-8"


def _not_yaml(path: Path) -> str:
    path.write_text(MAP.replace("{node:", "[node:"), encoding="utf-8")
    return f"{path}:4: file: not valid YAML: expected ',' or ']', but got '}}'"


BROKEN: dict[str, Callable[[Path], str]] = {
    "not UTF-8": _not_utf8,
    "not YAML": _not_yaml,
    "a folder": broken_files.a_folder,
    "missing": broken_files.missing,
    "too large": broken_files.too_large,
}


@pytest.mark.parametrize("broken", BROKEN)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_map_file_that_cannot_be_read_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str, broken: str
) -> None:
    monkeypatch.setenv("SERVICECAST_MQTT_URL", "mqtt://127.0.0.1:9")
    path = tmp_path / "map.yaml"
    problem = BROKEN[broken](path)
    args, what = COMMANDS[command]
    result = CliRunner().invoke(app, [*args, str(path)])
    assert result.stderr.splitlines() == [f"servicecast: {what} {problem}"], result.stderr
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exception
