"""Ingest throughput against the bare paho ceiling, both draining the same backlog on the same broker.

python -m benchmarks.ingest --messages 100000 --json [--rounds 3] [--database-url URL] [--broker-url URL]
python -m benchmarks.ingest --protocol sparkplug …: the Sparkplug host against a bare protobuf decoder
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pandas as pd
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.engine import make_url

from benchmarks.services import Mosquitto
from fleet import contract, migrate
from fleet.db import make_engine
from fleet.settings import MqttEndpoint, Settings
from ingest.service import Ingester
from simulators.publisher import Publisher
from simulators.registration import register_machines

MACHINES = 100
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def machine_codes(n: int) -> list[str]:
    """Machine ids m-000, m-001, …"""
    return [f"m-{i:03d}" for i in range(n)]


def backlog(tenant: str, n: int) -> list[tuple[str, bytes]]:
    """N valid messages from 100 machines, five readings each."""
    codes = machine_codes(MACHINES)
    out = []
    for i in range(n):
        seq, machine = divmod(i, MACHINES)
        readings = {
            "flow_m3h": 120.0 + i % 13,
            "discharge_pressure_bar": 6.1,
            "motor_current_a": 38.2 + i % 7 / 10,
            "bearing_temp_c": 61.5,
            "vibration_rms_mm_s": 2.3,
        }
        out.append(
            (
                contract.telemetry_topic(tenant, codes[machine]),
                contract.encode_payload(seq + 1, START, readings),
            )
        )
    return out


def queue_backlog(url: str, batch: list[tuple[str, bytes]]) -> None:
    """Publish the backlog at QoS 1 while the subscriber is offline; return once the broker has all of it."""
    with Publisher(url, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}") as publisher:
        publisher.publish_many(batch)
        if not publisher.wait(300):
            raise RuntimeError("the broker did not acknowledge the whole backlog")


def bare_client(endpoint: MqttEndpoint, client_id: str) -> mqtt.Client:
    """A plain paho MQTT 5 client with a persistent session."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    return client


def connect_persistent(client: mqtt.Client, endpoint: MqttEndpoint) -> None:
    """CONNECT with clean_start off and a session that outlives the connection."""
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect(endpoint.host, endpoint.port, clean_start=False, properties=props)


def measure_ceiling(url: str, batch: list[tuple[str, bytes]]) -> float:
    """Messages per second a bare paho subscriber drains (json.loads only, auto-ack)."""
    tenant_filter = batch[0][0].split("/")[0] + "/" + batch[0][0].split("/")[1] + "/+/telemetry"
    return drain_bare(url, batch, tenant_filter, json.loads, f"bench-bare-{uuid.uuid4().hex[:6]}")


def drain_bare(
    url: str,
    batch: list[tuple[str, bytes]],
    topic_filter: str,
    decode: Callable[[bytes], object],
    client_id: str,
) -> float:
    """Messages per second a bare paho subscriber drains from a queued backlog, decoding each (auto-ack)."""
    endpoint = MqttEndpoint(url)
    subscribed = threading.Event()
    client = bare_client(endpoint, client_id)
    client.on_subscribe = lambda *_: subscribed.set()
    connect_persistent(client, endpoint)
    client.subscribe(topic_filter, qos=1)
    client.loop_start()
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()
    queue_backlog(url, batch)

    received = 0
    done = threading.Event()

    def on_message(_c, _u, message: mqtt.MQTTMessage) -> None:
        nonlocal received
        decode(message.payload)
        received += 1
        if received == len(batch):
            done.set()

    client = bare_client(endpoint, client_id)
    client.on_message = on_message
    started = time.perf_counter()
    connect_persistent(client, endpoint)
    client.loop_start()
    if not done.wait(600):
        raise RuntimeError(f"bare subscriber got {received} of {len(batch)}")
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return len(batch) / elapsed


def fresh_store(database_url: str, tenant: str):
    """The benchmark's store: schema migrated, `tenant`'s machines registered."""
    engine = make_engine(database_url)
    migrate.ensure_schema(engine)
    register_machines(
        engine=engine,
        machines=pd.DataFrame({"tenant": tenant, "machine": machine_codes(MACHINES)}),
        purposes={tenant: ()},
    )
    return engine


def measure_ingest(
    url: str, database_url: str, batch: list[tuple[str, bytes]], tenant: str
) -> tuple[float, int]:
    """Messages per second the full ingester drains, commit before ack."""
    engine = fresh_store(database_url, tenant)
    settings = Settings(database_url=database_url, mqtt_url=url, ingest_topic=f"fleet/{tenant}/+/telemetry")
    client_id = f"bench-ingest-{tenant}"
    first = Ingester(settings=settings, engine=engine, endpoint=MqttEndpoint(url), client_id=client_id)
    first.start()
    first.source.subscribed.wait(10)
    first.stop()
    queue_backlog(url, batch)

    ingester = Ingester(settings=settings, engine=engine, endpoint=MqttEndpoint(url), client_id=client_id)
    started = time.perf_counter()
    ingester.start()
    deadline = time.monotonic() + 900
    while ingester.stats.stored < len(batch):
        if time.monotonic() > deadline:
            raise RuntimeError(f"ingester stored {ingester.stats.stored} of {len(batch)}")
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    ingester.stop()
    engine.dispose()
    return len(batch) / elapsed, ingester.stats.batches


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: a SQLite file in a temp folder")
    parser.add_argument("--broker-url", help="default: a Mosquitto started for the run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians reported")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--protocol", choices=("json", "sparkplug"), default="json", help="what machines send"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        broker = None
        url = args.broker_url
        if url is None:
            (Path(tmp) / "mosquitto").mkdir()
            broker = Mosquitto(Path(tmp) / "mosquitto").start()
            url = broker.url
        database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
        ceilings, ingests, batches = [], [], 0
        try:
            # Alternating the two, round after round, keeps a drifting machine load from favouring either.
            for _ in range(args.rounds):
                tenant = f"bench{uuid.uuid4().hex[:8]}"
                if args.protocol == "sparkplug":
                    from benchmarks import ingest_sparkplug

                    ceiling, rate, batches = ingest_sparkplug.measure_round(
                        url, database_url, tenant, args.messages
                    )
                    ceilings.append(ceiling)
                    ingests.append(rate)
                    continue
                ceilings.append(measure_ceiling(url, backlog(tenant, args.messages)))
                rate, batches = measure_ingest(url, database_url, backlog(tenant, args.messages), tenant)
                ingests.append(rate)
        finally:
            if broker:
                broker.stop()
    ceiling, ingest = statistics.median(ceilings), statistics.median(ingests)
    result = {
        "protocol": args.protocol,
        "messages": args.messages,
        "machines": MACHINES,
        "rounds": args.rounds,
        "ceiling_msgs_per_s": round(ceiling),
        "ingest_msgs_per_s": round(ingest),
        "ratio": round(ingest / ceiling, 3),
        "ceiling_rounds": [round(x) for x in ceilings],
        "ingest_rounds": [round(x) for x in ingests],
        "mean_batch": round(args.messages / batches),
        "db": make_url(database_url).get_backend_name(),
        "broker": "mosquitto (started for the run)" if broker else url,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
