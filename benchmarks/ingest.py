"""Ingest throughput against the bare paho ceiling, both draining the same backlog on the same broker.

python -m benchmarks.ingest --messages 100000 --json [--rounds 3] [--database-url URL] [--broker-url URL]
python -m benchmarks.ingest --protocol sparkplug …: the Sparkplug host against a bare protobuf decoder
--writer both: also the ingester with its writer thread in the receiving process, in the same rounds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pandas as pd
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.engine import make_url

from benchmarks.services import Mosquitto
from fleet import contract, migrate, mqtt_loop
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


class Cpu:
    """CPU time of this process when the last backlog was queued: what a drain costs is the CPU since then."""

    queued_at = 0.0

    @classmethod
    def since_queued(cls) -> float:
        """Seconds of this process's CPU (all threads) since the last backlog was queued."""
        return time.process_time() - cls.queued_at


def process_cpu(pid: int) -> float:
    """User and system CPU seconds of another process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def queue_backlog(url: str, batch: list[tuple[str, bytes]]) -> None:
    """Publish the backlog at QoS 1 while the subscriber is offline; return once the broker has all of it."""
    with Publisher(url, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}") as publisher:
        publisher.publish_many(batch)
        if not publisher.wait(300):
            raise RuntimeError("the broker did not acknowledge the whole backlog")
    Cpu.queued_at = time.process_time()


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
    mqtt_loop.stop(client)
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
    mqtt_loop.stop(client)
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


@dataclass
class Drain:
    """One drain of the ingester: its rate, batches, and CPU per message of each of its processes."""

    rate: float
    batches: int
    receiver_cpu_us: float
    writer_cpu_us: float | None  # None when the writer ran in the receiving process


def measure_ingest(
    url: str, database_url: str, batch: list[tuple[str, bytes]], tenant: str, *, writer_process: bool = True
) -> Drain:
    """Messages per second the full ingester drains, commit before ack."""
    engine = fresh_store(database_url, tenant)
    settings = Settings(
        database_url=database_url,
        mqtt_url=url,
        ingest_topic=f"fleet/{tenant}/+/telemetry",
        ingest_writer_process=writer_process,
    )
    client_id = f"bench-ingest-{tenant}"
    first = Ingester(settings=settings, engine=engine, endpoint=MqttEndpoint(url), client_id=client_id)
    first.start()
    first.source.subscribed.wait(10)
    first.stop()
    queue_backlog(url, batch)

    ingester = Ingester(settings=settings, engine=engine, endpoint=MqttEndpoint(url), client_id=client_id)
    return drain(ingester, engine, len(batch), len(batch))


def drain(ingester: Ingester, engine, messages: int, rows: int) -> Drain:
    """Start the ingester on its queued backlog and time it until `rows` are stored; then stop it."""
    started = time.perf_counter()
    ingester.start()
    writer_pid = getattr(ingester.writer.committer, "pid", None)
    writer_cpu = process_cpu(writer_pid) if writer_pid else 0.0
    deadline = time.monotonic() + 900
    while ingester.stats.stored < rows:
        if time.monotonic() > deadline:
            raise RuntimeError(f"ingester stored {ingester.stats.stored} of {rows}")
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    receiver_cpu = Cpu.since_queued()
    writer_cpu = process_cpu(writer_pid) - writer_cpu if writer_pid else None
    ingester.stop()
    engine.dispose()
    return Drain(
        messages / elapsed,
        ingester.stats.batches,
        receiver_cpu / messages * 1e6,
        None if writer_cpu is None else writer_cpu / messages * 1e6,
    )


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
    parser.add_argument(
        "--writer",
        choices=("process", "thread", "both"),
        default="process",
        help="where the ingester commits (SERVICECAST_INGEST_WRITER_PROCESS); both: a third drain per round",
    )
    args = parser.parse_args()
    writers = {"process": [True], "thread": [False], "both": [True, False]}[args.writer]

    with tempfile.TemporaryDirectory() as tmp:
        broker = None
        url = args.broker_url
        if url is None:
            (Path(tmp) / "mosquitto").mkdir()
            broker = Mosquitto(Path(tmp) / "mosquitto").start()
            url = broker.url
        database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
        ceilings: list[float] = []
        ceiling_cpus: list[float] = []
        drains: dict[bool, list[Drain]] = {w: [] for w in writers}
        try:
            # Alternating them, round after round, keeps a drifting machine load from favouring either.
            for _ in range(args.rounds):
                for writer_process in writers:
                    tenant = f"bench{uuid.uuid4().hex[:8]}"
                    if args.protocol == "sparkplug":
                        from benchmarks import ingest_sparkplug

                        ceiling, ceiling_cpu, one = ingest_sparkplug.measure_round(
                            url, database_url, tenant, args.messages, writer_process=writer_process
                        )
                    else:
                        ceiling = measure_ceiling(url, backlog(tenant, args.messages))
                        ceiling_cpu = Cpu.since_queued() / args.messages * 1e6
                        one = measure_ingest(
                            url,
                            database_url,
                            backlog(tenant, args.messages),
                            tenant,
                            writer_process=writer_process,
                        )
                    ceilings.append(ceiling)
                    ceiling_cpus.append(ceiling_cpu)
                    drains[writer_process].append(one)
        finally:
            if broker:
                broker.stop()
    ceiling = statistics.median(ceilings)
    result = {
        "protocol": args.protocol,
        "messages": args.messages,
        "machines": MACHINES,
        "rounds": args.rounds,
    }
    result["ceiling_msgs_per_s"] = round(ceiling)
    for writer_process in writers:
        runs = drains[writer_process]
        rate = statistics.median(d.rate for d in runs)
        prefix = "" if writer_process == writers[0] else "thread_writer_"
        result[prefix + "ingest_msgs_per_s"] = round(rate)
        result[prefix + "ratio"] = round(rate / ceiling, 3)
        result[prefix + "ingest_rounds"] = [round(d.rate) for d in runs]
        # CPU per message of the process that receives, against the ceiling's (robust to the machine's load
        # only in part: a loaded machine makes paho read fewer packets per wake-up, in both).
        result[prefix + "receiver_cpu_us_per_msg"] = round(
            statistics.median(d.receiver_cpu_us for d in runs), 1
        )
        if runs[0].writer_cpu_us is not None:
            result[prefix + "writer_cpu_us_per_msg"] = round(
                statistics.median(d.writer_cpu_us for d in runs), 1
            )
        result[prefix + "mean_batch"] = round(args.messages * len(runs) / sum(d.batches for d in runs))
    result["writer"] = "process" if writers[0] else "thread"
    result["ceiling_rounds"] = [round(x) for x in ceilings]
    result["ceiling_cpu_us_per_msg"] = round(statistics.median(ceiling_cpus), 1)
    result["db"] = make_url(database_url).get_backend_name()
    result["broker"] = "mosquitto (started for the run)" if broker else url
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
