"""Simulator throughput: backfill into the telemetry store, and live publishing against bare paho."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fleet import migrate, mqtt_loop
from fleet.db import make_engine
from fleet.settings import MqttEndpoint
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate
from simulators.live import publish_run
from simulators.machine_types import SENSOR_COLUMNS
from simulators.messages import iter_messages


def generate(config: FleetConfig) -> dict:
    """Generation alone: walk every panel chunk and count sensor values."""
    t0 = time.perf_counter()
    run = simulate(config)
    rows = readings = 0
    for panel in run.iter_panels():
        rows += len(panel)
        readings += int(panel[list(SENSOR_COLUMNS)].notna().to_numpy().sum())
    seconds = time.perf_counter() - t0
    return {
        "rows": rows,
        "readings": readings,
        "seconds": round(seconds, 2),
        "readings_per_s": round(readings / seconds),
    }


def store(config: FleetConfig, database_url: str) -> dict:
    """Backfill into the database (schema migrated first), then once more to show it adds nothing."""
    engine = make_engine(database_url)
    migrate.ensure_schema(engine)
    run = simulate(config)
    done = [0]
    last = [time.monotonic()]

    def progress(n: int) -> None:
        done[0] += n
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            print(f"backfill: {done[0]:,} rows", file=sys.stderr, flush=True)

    first = backfill(run, engine, progress=progress)
    again = backfill(run, engine)
    engine.dispose()
    return {
        "backend": engine.dialect.name,
        "rows": first.rows,
        "stored": first.stored,
        "readings": first.readings,
        "failures": first.failures,
        "seconds": round(first.seconds, 2),
        "rows_per_s": round(first.rows_per_s),
        "readings_per_s": round(first.readings_per_s),
        "rerun_stored": again.stored,
        "rerun_seconds": round(again.seconds, 2),
    }


def bare_paho(url: str, messages: list[tuple[str, bytes]]) -> float:
    """Seconds for a plain paho client (QoS 1, same in-flight window) to get every PUBACK."""
    endpoint = MqttEndpoint(url)
    done = threading.Event()
    acked = [0]
    total = len(messages)

    def on_publish(*_args: object) -> None:
        acked[0] += 1
        if acked[0] >= total:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    connected.wait(15)
    t0 = time.perf_counter()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1)
    done.wait(300)
    seconds = time.perf_counter() - t0
    client.disconnect()
    mqtt_loop.stop(client)
    return seconds


@contextlib.contextmanager
def broker() -> Iterator[tuple[str, str]]:
    """A Mosquitto in a temp dir if the binary is there, else the embedded amqtt broker."""
    from benchmarks import services

    if services.mosquitto_available():
        with tempfile.TemporaryDirectory() as tmp:
            mosquitto = services.Mosquitto(Path(tmp)).start()
            try:
                yield mosquitto.url, "mosquitto"
            finally:
                mosquitto.stop()
        return
    from servicecast.broker import EmbeddedBroker

    embedded = EmbeddedBroker().start()
    try:
        yield embedded.url, "amqtt"
    finally:
        embedded.stop()


def live(machines: int, steps: int, rounds: int) -> dict:
    """Publish the fleet as fast as acks come back, and the same payloads with bare paho; best of `rounds`."""
    config = FleetConfig(machines=machines, days=steps / 1440, seed=0, step_seconds=60)
    run = simulate(config)
    payloads = [(m.topic, m.payload) for m in iter_messages(run)]
    sim_best = bare_best = None
    with broker() as (url, name):
        for _ in range(rounds):
            bare = len(payloads) / bare_paho(url, payloads)
            report = publish_run(run, url=url)
            assert report.acked == report.sent == len(payloads), (report, len(payloads))
            sim_best = max(sim_best or 0.0, report.acked_per_s)
            bare_best = max(bare_best or 0.0, bare)
    return {
        "broker": name,
        "machines": machines,
        "steps": steps,
        "messages": len(payloads),
        "simulator_acked_per_s": round(sim_best),
        "bare_paho_acked_per_s": round(bare_best),
        "ratio": round(sim_best / bare_best, 3),
    }


def main() -> None:
    """Command line: `python -m benchmarks.simulate --json`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temp dir")
    parser.add_argument("--live-machines", type=int, default=1000)
    parser.add_argument("--live-steps", type=int, default=60, help="1-minute steps to publish live")
    parser.add_argument("--rounds", type=int, default=2, help="live rounds; the best of each side counts")
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    config = FleetConfig(machines=args.machines, days=args.days, seed=args.seed, step_seconds=60)
    result: dict = {"benchmark": "simulate", "cpus": os.cpu_count()}
    if not args.skip_backfill:
        result["generate"] = generate(config)
        with tempfile.TemporaryDirectory() as tmp:
            url = args.database_url or f"sqlite:///{tmp}/backfill.db"
            result["backfill"] = {"machines": args.machines, "days": args.days, **store(config, url)}
    result["live"] = live(args.live_machines, args.live_steps, args.rounds)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
