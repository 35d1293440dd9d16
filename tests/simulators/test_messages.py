"""MQTT messages: contract v1, global time order, seq without gaps, the configured share of bad payloads."""

from __future__ import annotations

import json
from collections import defaultdict

import pandas as pd
import pytest

from fleet import contract
from ingest.contract import parse_message
from ingest.schemas import Rejection
from simulators.config import FleetConfig
from simulators.engine import BAD_PAYLOAD_KINDS, simulate
from simulators.machine_types import MACHINE_TYPES
from simulators.messages import iter_messages
from tests.simulators.helpers import REASONS

RATE = 0.05


@pytest.fixture(scope="module")
def run_and_messages():
    config = FleetConfig(
        machines=8, days=1, seed=4, failure_rate=60.0, fault_rate=2.0, bad_payload_rate=RATE, step_seconds=60
    )
    run = simulate(config)
    return run, list(iter_messages(run))


def test_valid_messages_meet_the_contract(run_and_messages):
    run, messages = run_and_messages
    types = dict(zip(run.machines["machine"], run.machines["machine_type"], strict=True))
    tenants = dict(zip(run.machines["machine"], run.machines["tenant"], strict=True))
    for m in (m for m in messages if m.valid):
        reading = parse_message(m.topic, m.payload)  # the ingester's reading of contract v1
        assert type(reading) is not Rejection, (m, reading)
        body = json.loads(m.payload)
        assert body["ts"] == contract.format_ts(reading.ts), "timestamps as the contract writes them"
        assert m.topic == f"fleet/{tenants[m.machine]}/{m.machine}/telemetry" and body["seq"] == m.seq
        assert body["v"] == 1 and set(body["readings"]) <= set(MACHINE_TYPES[types[m.machine]].sensor_names)
        assert body.get("state", "running") in {"running", "failed", "maintenance"}
        assert (body.get("state") is None) or body["readings"] == {}


def test_seq_per_machine_counts_from_one_without_gaps_in_time_order(run_and_messages):
    run, messages = run_and_messages
    seqs = defaultdict(list)
    for m in messages:
        if m.valid:
            seqs[m.machine].append(m.seq)
    assert set(seqs) == set(run.machines["machine"])
    for seq in seqs.values():
        assert seq == list(range(1, run.config.steps + 1))
    valid_seq = [m.seq for m in messages if m.valid]
    assert valid_seq == sorted(valid_seq)  # step 1 of every machine, then step 2, …


def test_bad_payloads_have_the_configured_share_and_are_really_invalid(run_and_messages):
    run, messages = run_and_messages
    invalid = [m for m in messages if not m.valid]
    assert len(invalid) == len(run.bad_payloads)
    assert abs(len(invalid) / len(messages) - RATE) < 0.01
    assert set(run.bad_payloads["kind"]) == set(BAD_PAYLOAD_KINDS)
    bad = run.bad_payloads
    kinds = {(m, s): k for m, s, k in zip(bad["machine"], bad["seq"], bad["kind"], strict=True)}
    valid_before = {}
    for m in messages:
        if m.valid:
            valid_before[m.machine] = m.seq
            continue
        rejection = parse_message(m.topic, m.payload)
        kind = kinds[(m.machine, valid_before[m.machine])]
        assert type(rejection) is Rejection and rejection.reason == REASONS[kind], (m, kind, rejection)
    # Each bad payload follows the valid message it mimics.
    for before, after in zip(messages, messages[1:], strict=False):
        if not after.valid:
            assert before.valid and before.machine == after.machine
            assert after.seq in (None, before.seq)


def test_payload_readings_match_the_panel(run_and_messages):
    run, messages = run_and_messages
    panel = run.telemetry().set_index(["machine", "seq"])
    for m in [m for m in messages if m.valid][::97]:
        body = json.loads(m.payload)
        row = panel.loc[(m.machine, m.seq)]
        assert pd.Timestamp(body["ts"]) == row["ts"]
        sensors = row.drop(["tenant", "machine_type", "ts", "state"])
        expected = {k: v for k, v in sensors.items() if pd.notna(v)}
        assert body["readings"] == expected
