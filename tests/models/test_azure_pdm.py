"""The Azure PdM benchmark end to end on a slice (4 machines, 6 weeks) on SQLite; clear errors on bad data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import azure_pdm

DATA = Path("/work/shared/data/azure_pdm")
MACHINES = {1, 3, 14, 16}
END = pd.Timestamp("2015-02-12 06:00:00")
FIGURES = {"failures", "recall", "episode_precision", "f1", "median_lead_h", "false_alarms_per_machine_month"}


def _slice(out: Path) -> Path:
    for name in azure_pdm.azure_onboard.FILES.values():
        frame = pd.read_csv(DATA / name)
        frame = frame[frame["machineID"].isin(MACHINES)]
        if "datetime" in frame:
            frame = frame[pd.to_datetime(frame["datetime"]) < END]
        with gzip.open(out / name, "wt", encoding="utf-8") as f:
            frame.to_csv(f, index=False)
    return out


@pytest.fixture(scope="module")
def slice_dir(tmp_path_factory) -> Path:
    return _slice(tmp_path_factory.mktemp("azure"))


# About a minute of CPU (onboarding, training the product, twenty reference fits): on a shared box
# under load that is more wall time than the suite's default timeout.
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_slice_onboards_trains_and_reports_the_product_and_the_reference(slice_dir, capsys) -> None:
    assert azure_pdm.main(["--data", str(slice_dir), "--holdout-machines", "16", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["onboarded"] == {
        "machines": 4,
        "readings": 4 * 24 * 42,
        "events": result["onboarded"]["events"],
        "failures": 7,
        "maintenance": result["onboarded"]["maintenance"],
    }
    assert result["machines_tested"] == 1 and result["seconds"] > 0
    for side in (result, result["reference"]):
        assert FIGURES <= set(side["overall"])
        assert set(side["per_component"]) == {"comp1", "comp2", "comp3", "comp4"}
        assert side["overall"]["failures"] == 3  # machine 16: comp1 and comp3 on Jan 2, comp1 on Jan 17
        for figures in side["per_component"].values():
            assert FIGURES <= set(figures)
    assert result["reference"]["overall"]["episodes"] > 0  # the reference model was fitted and alerted


def test_data_it_cannot_onboard_fails_with_a_message(slice_dir, tmp_path, capsys) -> None:
    assert azure_pdm.main(["--data", str(tmp_path)]) == 2
    assert "missing PdM_machines.csv.gz" in capsys.readouterr().err
    for name in azure_pdm.azure_onboard.FILES.values():
        (tmp_path / name).write_bytes((slice_dir / name).read_bytes())
    with gzip.open(tmp_path / "PdM_failures.csv.gz", "at", encoding="utf-8") as f:
        f.write("yesterday,1,comp1\n")
    assert azure_pdm.main(["--data", str(tmp_path), "--holdout-machines", "16"]) == 2
    err = capsys.readouterr().err
    assert "cannot run the Azure benchmark" in err and "time 'yesterday' is not ISO 8601" in err
