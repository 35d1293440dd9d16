"""A settings file a person hands in (types, catalog, column mapping) is read up to a bound: a wrong file, or
/dev/zero, is one line naming it, never a process that reads until the memory is gone."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from servicecast.cli import app
from tests import broken_files

# What the child may take in all: far more than the bound, far less than a read of /dev/zero to its end.
ADDRESS_SPACE = 1 << 30
READ_DEV_ZERO = """
from pathlib import Path
from fleet import text_files
try:
    text_files.read(Path("/dev/zero"))
except text_files.FileProblem as exc:
    print(exc)
"""


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def test_dev_zero_is_refused_after_the_bound_not_read_to_the_end() -> None:
    # Before: path.read_bytes() of /dev/zero never ends; under the child's limit it is a MemoryError.
    out = subprocess.run(
        [sys.executable, "-c", READ_DEV_ZERO],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_bounded,
        env={"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout == "/dev/zero: file: larger than 16,777,216 bytes, not read\n", out.stderr[-2000:]
    assert out.returncode == 0


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["catalog", "add"], "servicecast: {path} cannot be read: larger than 16,777,216 bytes, not read"),
        (["types", "apply"], "{problem}"),
    ],
)
def test_a_settings_file_too_large_is_one_line(tmp_path: Path, args: list[str], shown: str) -> None:
    path = tmp_path / "settings.yaml"
    problem = broken_files.too_large(path)
    result = CliRunner().invoke(app, [*args, str(path)])
    assert shown.format(path=path, problem=problem) in result.stderr.splitlines(), result.stderr
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception


def test_a_mapping_file_too_large_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    broken_files.too_large(path)
    data = tmp_path / "history.csv"
    data.write_text("machine,ts,kind\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["history", "import", str(data), "--mapping", str(path), "--dry-run"])
    assert f"mapping file {path}: larger than 16,777,216 bytes, not read" in result.stderr, result.stderr
    assert isinstance(result.exception, SystemExit), result.exception
