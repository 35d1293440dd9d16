"""Sparkplug B ingest throughput: the host against a bare paho subscriber decoding the same payloads.

Run through `python -m benchmarks.ingest --protocol sparkplug` (same options as the JSON benchmark).
"""

from __future__ import annotations

import uuid

from benchmarks.ingest import (
    MACHINES,
    Cpu,
    Drain,
    bare_client,
    drain,
    drain_bare,
    fresh_store,
    machine_codes,
    queue_backlog,
)
from fleet.settings import MqttEndpoint, Settings
from ingest.sparkplug import sparkplug_b_pb2 as pb
from ingest.sparkplug.decode import NAMESPACE
from ingest.sparkplug.host import SparkplugHost
from ingest.sparkplug.mapping import Mapping

T0 = 1_795_000_000_000  # ms
SENSORS = ("flow_m3h", "discharge_pressure_bar", "motor_current_a", "bearing_temp_c", "vibration_rms_mm_s")
DEVICE = "pump"


def _payload(ts: int, seq: int, metrics: list[tuple[str | None, int | None, int, object]]) -> bytes:
    message = pb.Payload(timestamp=ts, seq=seq)
    for name, alias, datatype, value in metrics:
        metric = message.metrics.add(timestamp=ts, datatype=datatype)
        if name is not None:
            metric.name = name
        if alias is not None:
            metric.alias = alias
        if datatype == pb.Double:
            metric.double_value = value
        elif datatype == pb.Boolean:
            metric.boolean_value = value
        else:
            metric.long_value = value
    return message.SerializeToString()


def backlog(group: str, n: int) -> list[tuple[str, bytes]]:
    """NBIRTH and DBIRTH of one edge node per machine, then N DDATA by alias, five metrics each."""
    nodes = machine_codes(MACHINES)
    out = []
    for node in nodes:
        control = [("bdSeq", None, pb.Int64, 0), ("Node Control/Rebirth", None, pb.Boolean, False)]
        out.append((f"{NAMESPACE}/{group}/NBIRTH/{node}", _payload(T0, 0, control)))
        named = [(name, alias, pb.Double, 0.0) for alias, name in enumerate(SENSORS)]
        out.append((f"{NAMESPACE}/{group}/DBIRTH/{node}/{DEVICE}", _payload(T0, 1, named)))
    for i in range(n):
        seq, machine = divmod(i, MACHINES)
        values = (120.0 + i % 13, 6.1, 38.2 + i % 7 / 10, 61.5, 2.3)
        metrics = [(None, alias, pb.Double, value) for alias, value in enumerate(values)]
        topic = f"{NAMESPACE}/{group}/DDATA/{nodes[machine]}/{DEVICE}"
        out.append((topic, _payload(T0 + 1 + seq, (seq + 2) % 256, metrics)))
    return out


def mapping(group: str, tenant: str) -> Mapping:
    """Each edge node's device is the machine of the same name; metric names are the sensor names."""
    machines = [
        {"group": group, "edge_node": code, "device": DEVICE, "tenant": tenant, "machine": code}
        | {"sensors": {name: name for name in SENSORS}}
        for code in machine_codes(MACHINES)
    ]
    return Mapping.from_dict({"machines": machines})


def measure_ceiling(url: str, batch: list[tuple[str, bytes]], group: str) -> float:
    """Messages per second a bare paho subscriber drains, decoding each protobuf payload (auto-ack)."""
    client_id = f"bench-bare-spb-{uuid.uuid4().hex[:6]}"
    rate = drain_bare(url, batch, f"{NAMESPACE}/{group}/#", pb.Payload.FromString, client_id)
    end_session(url, client_id)
    return rate


def measure_host(
    url: str,
    database_url: str,
    batch: list[tuple[str, bytes]],
    tenant: str,
    group: str,
    *,
    writer_process: bool = True,
) -> Drain:
    """Messages per second the Sparkplug host drains (decode, aliases, seq, store; commit before ack)."""
    engine = fresh_store(database_url, tenant)
    settings = Settings(database_url=database_url, mqtt_url=url, ingest_writer_process=writer_process)
    options = {
        "settings": settings,
        "engine": engine,
        "endpoint": MqttEndpoint(url),
        "mapping": mapping(group, tenant),
        "host_id": f"bench-{group}",
        "client_id": f"bench-spb-{group}",
    }
    first = SparkplugHost(**options)
    first.start()
    first.source.subscribed.wait(10)
    first.stop()
    queue_backlog(url, batch)

    rows = len(batch) - MACHINES  # every message but the NBIRTHs (control metrics only) stores a row
    host = SparkplugHost(**options)
    result = drain(host, engine, len(batch), rows)
    end_session(url, options["client_id"])
    if host.stats.rebirths or host.stats.quarantined:
        raise RuntimeError("the Sparkplug backlog was not stored cleanly (rebirths or quarantine)")
    return result


def end_session(url: str, client_id: str) -> None:
    """Connect with a clean start and no session expiry, so that the broker stops queueing for this id."""
    endpoint = MqttEndpoint(url)
    client = bare_client(endpoint, client_id)
    client.connect(endpoint.host, endpoint.port, clean_start=True)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


def measure_round(
    url: str, database_url: str, tenant: str, n: int, *, writer_process: bool = True
) -> tuple[float, float, Drain]:
    """(ceiling msgs/s, ceiling CPU µs a message, the host's drain) of one round."""
    # Each on a group of its own: the bare subscriber's session would otherwise queue the host's backlog too.
    group, host_group = f"g{tenant}", f"h{tenant}"
    bare = backlog(group, n)
    ceiling = measure_ceiling(url, bare, group)
    ceiling_cpu = Cpu.since_queued() / len(bare) * 1e6
    host = measure_host(
        url, database_url, backlog(host_group, n), tenant, host_group, writer_process=writer_process
    )
    return ceiling, ceiling_cpu, host
