"""Live publishing through a real Mosquitto into the real ingester: every valid message stored, every bad one
quarantined with its reason; C-MAPSS replay stores every cycle."""

from __future__ import annotations

import json
import time
from collections import Counter

import pandas as pd
import pytest

from simulators import ground_truth
from simulators.cmapss import cmapss_failures, read_cmapss
from simulators.config import FleetConfig
from simulators.engine import simulate
from simulators.live import publish_messages, publish_run, replay_cmapss
from simulators.messages import iter_messages
from tests import services
from tests.data import FD001
from tests.ingest.support import count_rows, in_process_ingester, quarantine_reasons, stored_keys, wait_until
from tests.simulators.helpers import REASONS


def test_fleet_over_mosquitto_into_the_ingester(database_url, engine, mosquitto):
    config = FleetConfig(
        machines=50, days=2, seed=5, step_seconds=600, bad_payload_rate=0.005, fault_rate=0.5
    )
    run = simulate(config)
    messages = list(iter_messages(run))
    valid = {(m.machine, m.seq) for m in messages if m.valid}
    invalid = [m for m in messages if not m.valid]
    assert len(valid) == 50 * 288 and len(invalid) == len(run.bad_payloads) > 30

    ingester = in_process_ingester(database_url, engine, mosquitto.url, "sim-e2e", ingest_batch_size=2000)
    try:
        report = publish_run(run, url=mosquitto.url, database_url=database_url, client_id="sim-pub")
        assert (report.valid, report.invalid, report.acked) == (len(valid), len(invalid), len(messages))
        wait_until(
            lambda: count_rows(engine) >= len(valid) and len(quarantine_reasons(engine)) >= len(invalid),
            60,
            "every message to be stored or quarantined",
        )
        time.sleep(0.3)  # anything extra would arrive now
    finally:
        ingester.stop()

    keys = stored_keys(engine)
    assert len(keys) == len(valid) and set(keys) == valid
    expected = Counter(REASONS[kind] for kind in run.bad_payloads["kind"])
    assert Counter(quarantine_reasons(engine)) == expected
    failures = ground_truth.read_failures(engine, report.run_id)
    pd.testing.assert_frame_equal(failures, run.failures, check_dtype=False)


def test_speed_paces_publishing_by_simulated_time(mosquitto):
    run = simulate(FleetConfig(machines=3, days=1 / 24, seed=1, step_seconds=300, bad_payload_rate=0.0))
    started = time.perf_counter()
    report = publish_messages(iter_messages(run), url=mosquitto.url, period_s=300, speed=3000.0)
    # 12 steps: the last is due 11 × 300 s / 3000 = 1.1 s after the first.
    assert 1.0 < time.perf_counter() - started < 5.0
    assert report.acked == report.valid == 36


@pytest.fixture(scope="module")
def fd001_head():
    if not FD001.exists():
        services.unavailable(f"the C-MAPSS file {FD001}")
    df = read_cmapss(FD001)
    return df[df["unit"] <= 3]


def test_cmapss_replay_into_the_ingester(database_url, engine, mosquitto, fd001_head):
    ingester = in_process_ingester(database_url, engine, mosquitto.url, "cmapss-e2e")
    try:
        report = replay_cmapss(
            fd001_head, url=mosquitto.url, tenant="lab", cycle_seconds=600, database_url=database_url
        )
        assert report.valid == report.acked == len(fd001_head) and report.invalid == 0
        wait_until(lambda: count_rows(engine) >= len(fd001_head), 30, "every cycle to be stored")
    finally:
        ingester.stop()
    expected = {(f"engine-{u:03d}", c) for u, c in zip(fd001_head["unit"], fd001_head["cycle"], strict=True)}
    assert set(stored_keys(engine)) == expected and quarantine_reasons(engine) == []
    failures = ground_truth.read_failures(engine, report.run_id)
    truth = cmapss_failures(fd001_head, tenant="lab", cycle_seconds=600).sort_values(["ts", "machine"])
    assert failures["machine"].tolist() == truth["machine"].tolist()
    assert failures["ts"].tolist() == truth["ts"].tolist() and set(failures["mode"]) == {"hpc_degradation"}
    runs = ground_truth.list_runs(engine)
    assert runs["kind"].tolist() == ["cmapss"] and runs["config"][0]["units"] == [1, 2, 3]
    assert json.dumps(runs["config"][0])  # stored as plain JSON
