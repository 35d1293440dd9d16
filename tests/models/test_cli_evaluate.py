"""`servicecast evaluate` refuses a report folder or a fleet it cannot handle before it simulates anything."""

from __future__ import annotations

from typer.testing import CliRunner

from servicecast.cli import app

SMALL = ["evaluate", "--machines", "2", "--days", "3", "--train-days", "1"]


def test_a_report_folder_that_is_a_file_or_lies_under_one_is_refused_naming_it(tmp_path):
    (tmp_path / "report.md").write_text("mine")
    for out in (tmp_path / "report.md", tmp_path / "report.md" / "models"):
        result = CliRunner().invoke(app, [*SMALL, "--out", str(out)])
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output and "--out" in result.output
    assert (tmp_path / "report.md").read_text() == "mine"


def test_a_fleet_too_large_to_backtest_in_memory_is_refused_before_it_is_simulated():
    result = CliRunner().invoke(app, ["evaluate", "--machines", "100000", "--days", "3650"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "--machines" in result.output and "Traceback" not in result.output
