"""Telemetry as MQTT messages (contract v1), in global time order, with the configured bad payloads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fleet import contract
from simulators.engine import SimulationRun
from simulators.machine_types import MACHINE_TYPES, SENSOR_COLUMNS


@dataclass(frozen=True, slots=True)
class Message:
    """One publish: topic, payload bytes, whether it meets the contract, and its machine and seq."""

    topic: str
    payload: bytes
    valid: bool
    machine: str
    seq: int | None


def ts_strings(ts: pd.Series) -> list[str]:
    """ISO 8601 UTC with milliseconds and Z, vectorised."""
    return [s + "Z" for s in np.datetime_as_string(ts.to_numpy(dtype="datetime64[ns]"), unit="ms").tolist()]


def encode(seq: int, ts: str, readings: dict[str, float], state: str | None = None) -> bytes:
    """A valid v1 payload; `state` is only written when the machine is not running."""
    body = ",".join(f'"{name}":{value!r}' for name, value in readings.items())
    tail = "" if state is None else f',"state":"{state}"'
    return f'{{"v":{contract.PAYLOAD_VERSION},"seq":{seq},"ts":"{ts}","readings":{{{body}}}{tail}}}'.encode()


def corrupt(kind: str, valid: bytes, sensors: tuple[str, ...]) -> tuple[bytes, int | None]:
    """The invalid twin of a valid payload, and the seq it still carries (None if unreadable or missing)."""
    if kind == "malformed_json":
        return valid[: len(valid) // 2], None  # any strict prefix of a JSON object is not JSON
    body = json.loads(valid)
    readings = body["readings"]
    if kind == "reading_as_string":
        name = next(iter(readings), sensors[0])
        readings[name] = str(readings.get(name, "n/a"))
    elif kind == "missing_seq":
        del body["seq"]
    elif kind == "missing_ts":
        del body["ts"]
    elif kind == "readings_not_object":
        body["readings"] = list(readings.values())
    else:
        raise ValueError(f"unknown bad payload kind {kind!r}")
    return json.dumps(body, separators=(",", ":")).encode(), body.get("seq")


def iter_messages(run: SimulationRun, chunk_steps: int = 60) -> Iterator[Message]:
    """Every machine's message for step 1, then step 2, …; a bad payload follows the valid one it mimics."""
    machines = run.machines
    topics = [
        contract.telemetry_topic(t, m) for t, m in zip(machines["tenant"], machines["machine"], strict=True)
    ]
    names = machines["machine"].tolist()
    index = {name: i for i, name in enumerate(names)}
    col = {name: j for j, name in enumerate(SENSOR_COLUMNS)}
    type_sensors = [MACHINE_TYPES[t].sensor_names for t in machines["machine_type"]]
    type_cols = [[(s, col[s]) for s in sensors] for sensors in type_sensors]
    bad = {
        (index[m], int(s)): k
        for m, s, k in zip(
            run.bad_payloads["machine"], run.bad_payloads["seq"], run.bad_payloads["kind"], strict=True
        )
    }
    for panel in run.iter_panels(chunk_machines=len(machines), chunk_steps=chunk_steps):
        machine_idx = panel["machine"].cat.codes.to_numpy().tolist()
        seqs = panel["seq"].tolist()
        states = panel["state"].astype(object).tolist()
        values = panel[list(SENSOR_COLUMNS)].to_numpy().tolist()
        for m, seq, ts, state, row in zip(
            machine_idx, seqs, ts_strings(panel["ts"]), states, values, strict=True
        ):
            readings = {name: row[j] for name, j in type_cols[m] if row[j] == row[j]}  # NaN != NaN
            payload = encode(seq, ts, readings, None if state == "running" else state)
            yield Message(topics[m], payload, True, names[m], seq)
            kind = bad.get((m, seq))
            if kind is not None:
                junk, junk_seq = corrupt(kind, payload, type_sensors[m])
                yield Message(topics[m], junk, False, names[m], junk_seq)
