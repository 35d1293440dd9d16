"""`servicecast demo`: the whole chain on embedded defaults, for a newcomer."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import typer

from fleet import contract, migrate, telemetry
from fleet.db import engine_from_settings
from fleet.settings import MqttEndpoint, Settings
from ingest.service import Ingester
from servicecast.broker import EmbeddedBroker
from simulators.publisher import Publisher

log = logging.getLogger(__name__)
TENANTS = ("acme", "globex")


def demo_messages(machines: int, total: int, seed: int = 7) -> Iterator[tuple[str, bytes]]:
    """Plausible pump telemetry, one message a minute per machine, ending now."""
    rng = random.Random(seed)
    per_machine = max(1, total // machines)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=per_machine)
    for step in range(per_machine):
        ts = start + timedelta(minutes=step)
        load = 0.75 + 0.2 * math.sin(2 * math.pi * (ts.hour * 60 + ts.minute) / 1440)
        for m in range(machines):
            readings = {
                "flow_m3h": round(120 * load + rng.gauss(0, 2), 2),
                "discharge_pressure_bar": round(6.0 * load + rng.gauss(0, 0.05), 3),
                "motor_current_a": round(38 * load + rng.gauss(0, 0.5), 2),
                "bearing_temp_c": round(55 + 10 * load + rng.gauss(0, 0.4), 2),
                "vibration_rms_mm_s": round(2.2 + rng.gauss(0, 0.1), 3),
            }
            topic = contract.telemetry_topic(TENANTS[m % len(TENANTS)], f"pump-{m + 1:03d}")
            yield topic, contract.encode_payload(step + 1, ts, readings, fw="1.4.2")


def run_demo(settings: Settings) -> int:
    """Start what is missing, publish a small fleet's telemetry, ingest it and print what was stored."""
    if "ingest_auto_register" not in settings.model_fields_set:
        settings = settings.model_copy(update={"ingest_auto_register": True})
    engine = engine_from_settings(settings)
    migrate.ensure_schema(engine)
    broker = None
    endpoint = settings.mqtt_endpoint()
    if endpoint is None:
        broker = EmbeddedBroker().start()
        endpoint = MqttEndpoint(broker.url)
        settings = settings.model_copy(update={"mqtt_protocol": "3.1.1"})
        typer.echo(f"embedded MQTT broker (amqtt) on {broker.url}")
    typer.echo(f"database: {settings.database_url}")
    ingester = Ingester(
        settings=settings, engine=engine, endpoint=endpoint, client_id="servicecast-demo-ingest"
    )
    try:
        ingester.start()
        if not ingester.source.connected.wait(15):
            typer.echo("could not connect the ingester to the broker", err=True)
            return 1
        url = f"mqtt://{endpoint.host}:{endpoint.port}"
        if endpoint.username:
            url = f"mqtt://{endpoint.username}:{endpoint.password or ''}@{endpoint.host}:{endpoint.port}"
        started = time.monotonic()
        with Publisher(url, protocol=settings.mqtt_protocol) as publisher:
            sent = publisher.publish_many(demo_messages(settings.demo_machines, settings.demo_messages))
            publisher.wait(60)
        typer.echo(f"published {sent} messages from {settings.demo_machines} machines over MQTT (QoS 1)")
        deadline = time.monotonic() + 60
        stats = ingester.stats
        while stats.stored + stats.duplicates + stats.quarantined < sent and time.monotonic() < deadline:
            time.sleep(0.1)
        elapsed = time.monotonic() - started
    finally:
        ingester.stop()
        if broker:
            broker.stop()
    _print_summary(engine, ingester, elapsed)
    return 0


def _print_summary(engine, ingester: Ingester, elapsed: float) -> None:
    stats = ingester.stats
    typer.echo(
        f"ingested in {elapsed:.1f} s: {stats.stored} stored, {stats.duplicates} duplicates, "
        f"{stats.quarantined} quarantined, {stats.batches} batches"
    )
    rows = telemetry.summary(engine)
    typer.echo(f"\n{'tenant':<10}{'machine':<12}{'rows':>6}{'seq':>12}  last reading")
    for row in rows[:10]:
        seqs = f"{row['first_seq']}..{row['last_seq']}"
        last = f"{row['last_ts']:%Y-%m-%d %H:%M}"
        typer.echo(f"{row['tenant']:<10}{row['machine']:<12}{row['rows']:>6}{seqs:>12}  {last}")
    if len(rows) > 10:
        typer.echo(f"… and {len(rows) - 10} more machines")
    typer.echo(f"\ntelemetry rows in the database: {telemetry.count_telemetry(engine)}")
