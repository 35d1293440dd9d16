"""`servicecast evaluate-cmapss` prints JSON with --json and lines of key and value without, as the other
commands' --json do."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from models import cmapss
from servicecast.cli import app


def test_evaluate_cmapss_prints_json_only_when_asked(small: pd.DataFrame, tmp_path) -> None:
    # Four engines to train on, three to test (distinct counts, so a swap of the two shows): the fit's
    # size is not what this test is about, and eight engines cost each of its two CLI calls 1.7 CPU-s more.
    train, (test, rul) = small[small["unit"] <= 4], cmapss.make_test_split(small, np.arange(9, 12), seed=0)
    cmapss.write_cmapss(train, tmp_path / "train.txt")
    cmapss.write_cmapss(test, tmp_path / "test.txt")
    cmapss.write_rul(rul, tmp_path / "rul.txt")
    files = ["--train", str(tmp_path / "train.txt"), "--test", str(tmp_path / "test.txt")]
    files += ["--rul", str(tmp_path / "rul.txt")]
    runner = CliRunner()

    as_json = runner.invoke(app, ["evaluate-cmapss", *files, "--json"])
    assert as_json.exit_code == 0, as_json.output
    result = json.loads(as_json.stdout)
    assert result["units"] == 3 and result["train_units"] == 4

    as_text = runner.invoke(app, ["evaluate-cmapss", *files])
    assert as_text.exit_code == 0, as_text.output
    lines = dict(line.split(maxsplit=1) for line in as_text.stdout.splitlines())
    assert lines["units"] == "3" and lines["train_units"] == "4"
    assert set(lines) == set(result)
