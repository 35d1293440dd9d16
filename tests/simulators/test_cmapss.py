"""C-MAPSS FD001 replay: the real file's shape, one message per cycle, failure at the last cycle."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ingest.contract import parse_message
from ingest.schemas import Rejection
from simulators.cmapss import cmapss_failures, iter_cmapss_messages, read_cmapss
from tests import services
from tests.data import FD001


@pytest.fixture(scope="module")
def fd001():
    if not FD001.exists():
        services.unavailable(f"the C-MAPSS file {FD001}")
    return read_cmapss(FD001)


def test_reader_on_the_real_file(fd001):
    assert fd001.shape == (20_631, 26)
    assert fd001["unit"].nunique() == 100
    for _, cycles in fd001.groupby("unit")["cycle"]:
        assert cycles.tolist() == list(range(1, len(cycles) + 1))


def test_failure_is_the_last_cycle_of_each_unit(fd001):
    failures = cmapss_failures(fd001, cycle_seconds=600)
    assert len(failures) == 100 and failures["machine"].is_unique
    last = fd001.groupby("unit")["cycle"].max()
    assert failures["cycle"].tolist() == last.tolist()
    messages = list(iter_cmapss_messages(fd001, cycle_seconds=600))
    final = {}
    for m in messages:
        final[m.machine] = json.loads(m.payload)
    for f in failures.itertuples():
        assert final[f.machine]["seq"] == f.cycle and pd.Timestamp(final[f.machine]["ts"]) == f.ts


def test_messages_are_valid_in_time_order_with_seq_equal_to_cycle(fd001):
    messages = list(iter_cmapss_messages(fd001, tenant="lab", cycle_seconds=60))
    assert len(messages) == len(fd001)
    assert messages[0].topic == "fleet/lab/engine-001/telemetry"
    stamps = []
    for m in messages[::50]:
        assert m.valid and type(parse_message(m.topic, m.payload)) is not Rejection
        body = json.loads(m.payload)
        assert body["seq"] == m.seq and len(body["readings"]) == 24
        stamps.append(body["ts"])
    assert stamps == sorted(stamps)


def test_reader_tolerates_trailing_spaces_and_rejects_wrong_widths(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("1 1 " + " ".join(["0.5"] * 24) + "  \n1 2 " + " ".join(["0.6"] * 24) + "  \n")
    assert read_cmapss(good).shape == (2, 26)
    bad = tmp_path / "bad.txt"
    bad.write_text("1 1 0.1 0.2\n")
    with pytest.raises(ValueError):
        read_cmapss(bad)
