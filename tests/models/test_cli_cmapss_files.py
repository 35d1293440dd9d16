"""`evaluate-cmapss` and `simulate replay-cmapss` on files a user got wrong: one line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.cmapss import read_rul
from servicecast.cli import app

ROW = " ".join(["0.5"] * 24)


def _good(tmp: Path) -> Path:
    path = tmp / "train_FD001.txt"
    path.write_text("".join(f"{unit} {cycle} {ROW}\n" for unit in (1, 2) for cycle in range(1, 6)))
    return path


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.txt"
    path.write_text("")
    return path


def _words(tmp: Path) -> Path:
    path = tmp / "words.txt"
    path.write_text("".join(f"unit{u} cycle {ROW}\n" for u in (1, 2)))
    return path


def _folder(tmp: Path) -> Path:
    (tmp / "folder").mkdir()
    return tmp / "folder"


def _missing(tmp: Path) -> Path:
    return tmp / "missing.txt"


@pytest.mark.parametrize("bad", [_empty, _words, _folder, _missing])
@pytest.mark.parametrize("which", ["--train", "--test", "--rul"])
def test_evaluate_cmapss_names_the_file_that_is_wrong_in_one_line(bad, which, tmp_path):
    good, rul = _good(tmp_path), tmp_path / "RUL_FD001.txt"
    rul.write_text("10\n20\n")
    files = {"--train": good, "--test": good, "--rul": rul}
    files[which] = bad(tmp_path)
    # Typer's error panel folds a path longer than the terminal's line: a deeper tmp_path (pytest-xdist's
    # popen-gwN/) split the file's name in two at 80 columns.
    result = CliRunner(env={"COLUMNS": "250"}).invoke(
        app, ["evaluate-cmapss", *(str(x) for pair in files.items() for x in pair)]
    )
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and files[which].name in result.stderr


@pytest.mark.parametrize("bad", [_empty, _words])
def test_replay_cmapss_names_the_file_that_is_wrong_in_one_line(bad, tmp_path):
    path = bad(tmp_path)
    result = CliRunner().invoke(
        app, ["simulate", "replay-cmapss", str(path), "--mqtt-url", "mqtt://127.0.0.1:1"]
    )
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], lines


def test_an_empty_rul_file_is_refused_without_numpy_s_warning_before_the_one_line(tmp_path, recwarn):
    """numpy's 'loadtxt: input contained no data' UserWarning reached the user's terminal (three lines of
    it) before the one-line error that already says the file is empty."""
    path = _empty(tmp_path)
    with pytest.raises(ValueError, match="empty, expected one RUL per test unit"):
        read_rul(path)
    assert [str(w.message) for w in recwarn] == []
