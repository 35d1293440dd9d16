"""The demo fleet: simulated history straight into the store, trained models, live telemetry over MQTT."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import typer
from pydantic import SecretStr
from sqlalchemy import Engine, select

from fleet import audit, errors, registry
from fleet.settings import MqttEndpoint, Settings
from fleet.tables import Telemetry
from ingest.service import Ingester
from models import versions as model_versions
from models.training import train_from_store
from servicecast.broker import EmbeddedBroker
from servicecast.demo_opcua import DemoOpcUaMachine
from simulators import machine_types as simulated_types
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import SimulationRun, simulate
from simulators.live import PublishReport, publish_messages
from simulators.messages import Message, iter_messages

# tenant, display name, whether it grants `offers` and `product_improvement` (initech does not allow
# offers and umbrella does not let its data be pooled into training: consent shows both ways)
CUSTOMERS = (
    ("acme", "ACME Pumps", True, True),
    ("globex", "Globex Corporation", True, True),
    ("initech", "Initech", False, True),
    ("umbrella", "Umbrella Manufacturing", True, False),
)
SEED = 7
FAILURE_RATE = 18.0  # failure initiations per machine-year: a busy fleet, so there is something to act on
BAD_PAYLOAD_RATE = 0.005  # a few invalid messages in the live part, to show the quarantine
# Lighter boosting than `servicecast train` (150 iterations, 3 folds): the demo trains in seconds.
TRAINING = {"max_iter": 60, "folds": 2}


@dataclass(frozen=True)
class DemoFleet:
    """One seeded run ending now: its first `history_steps` are backfilled, the rest published live."""

    run: SimulationRun
    history_steps: int

    @property
    def live_steps(self) -> int:
        """Steps published over MQTT after the history."""
        return self.run.config.steps - self.history_steps

    def history(self) -> SimulationRun:
        """The same run cut at the end of the history, with the ground truth known by then."""
        config = self.run.config
        cut = pd.Timestamp(config.start) + pd.Timedelta(seconds=self.history_steps * config.step_seconds)
        return dataclasses.replace(
            self.run,
            config=dataclasses.replace(config, days=self.history_steps / config.steps_per_day),
            failures=self.run.failures[self.run.failures["ts"] < cut],
            maintenance=self.run.maintenance[self.run.maintenance["ts"] < cut],
        )

    def live_messages(self) -> Iterator[Message]:
        """Messages after the history, bad payloads included (each follows the valid one it mimics)."""
        return (message for _, message in self._live())

    def live_parts(self) -> tuple[list[Message], list[Message]]:
        """The live messages before the last step, and those of the last step."""
        parts: tuple[list[Message], list[Message]] = ([], [])
        for step, message in self._live():
            parts[step == self.run.config.steps].append(message)
        return parts

    def _live(self) -> Iterator[tuple[int, Message]]:
        step = 0
        for message in iter_messages(self.run):
            if message.valid:
                step = message.seq
            if step > self.history_steps:
                yield step, message


def plan(settings: Settings, now: datetime | None = None) -> DemoFleet:
    """The demo fleet from the SERVICECAST_DEMO_* sizes, its last live step at the current hour or before.

    Before by the whole steps that keep every reading stamped by now: a simulated clock running ahead (a
    clock-skew fault over the last steps) stamps past the hour, and the ingester refuses a future `ts`.
    """
    step = settings.demo_step_s
    per_day = 86_400 // step
    history = max(1, round(settings.demo_days * per_day))
    live = max(1, round(settings.demo_live_hours * 3600 / step))
    now = now or datetime.now(UTC)
    last = datetime.fromtimestamp(now.timestamp() // step * step, UTC)
    config = FleetConfig(
        machines=settings.demo_machines,
        days=(history + live) / per_day,
        seed=SEED,
        step_seconds=step,
        start=last - timedelta(seconds=(history + live - 1) * step),
        failure_rate=FAILURE_RATE,
        bad_payload_rate=BAD_PAYLOAD_RATE,
        tenants=tuple(tenant for tenant, *_ in CUSTOMERS),
    )
    run = simulate(config)
    ahead = run.ts_bound() - pd.Timestamp(now)
    if ahead > pd.Timedelta(0):  # faults are drawn by step, so the same fleet ends that much earlier
        back = math.ceil(ahead / pd.Timedelta(seconds=step)) * step
        run = simulate(dataclasses.replace(config, start=config.start - timedelta(seconds=back)))
    return DemoFleet(run, history)


def register_customers(engine: Engine) -> None:
    """The demo's customers with their grants; ones already registered are left as they are."""
    for tenant, name, offers, pooled in CUSTOMERS:
        try:
            registry.add_customer(
                engine=engine,
                tenant=tenant,
                name=name,
                offers=offers,
                product_improvement=pooled,
                by=audit.Operator("demo"),
            )
        except errors.AlreadyExists:
            continue


def apply_types(engine: Engine) -> None:
    """The simulated types, applied as `servicecast types apply simulators/fleet_types.yaml` does."""
    typer.echo(simulated_types.apply_to_store(engine, audit.Operator("demo")))


def has_telemetry(engine: Engine) -> bool:
    """Whether the database holds any telemetry already."""
    with engine.connect() as conn:
        return conn.scalar(select(Telemetry.seq).limit(1)) is not None


def store_history(fleet: DemoFleet, engine: Engine) -> None:
    """Backfill the history and its ground truth, as `servicecast simulate fleet --backfill` does."""
    history = fleet.history()
    report = backfill(history, engine)
    config = history.config
    typer.echo(
        f"history: {report.machines} machines of {len(config.tenants)} customers over {config.days:g} days, "
        f"a message {_every(config.step_seconds)}: {report.rows:,} rows and {report.failures} failures "
        f"written straight to the store in {report.seconds:.1f} s"
    )


def _every(seconds: int) -> str:
    return f"every {seconds / 3600:g} h" if seconds >= 3600 else f"every {seconds / 60:g} min"


def train(engine: Engine) -> None:
    """One model per machine type from the stored history, registered and activated."""
    started = time.monotonic()
    report = train_from_store(engine, by=audit.Operator("demo"), **TRAINING)
    versions = report.versions
    typer.echo(f"models: {len(versions)} trained and activated in {time.monotonic() - started:.1f} s")
    typer.echo(f"  {report.pooling()}")
    thresholds = {v.version: v.metrics.get("threshold") for v in model_versions.list_versions(engine)}
    for machine_type, version in sorted(versions.items()):
        typer.echo(f"  {machine_type:<18} {version}  alert threshold {thresholds.get(version)}")


def ensure_models(engine: Engine) -> None:
    """Train unless the (reused) database has active models already."""
    active = model_versions.active_versions(engine)
    if active:
        typer.echo(f"models: reusing the active versions {', '.join(sorted(active.values()))}")
        return
    train(engine)


def start_broker(settings: Settings) -> tuple[Settings, EmbeddedBroker | None]:
    """Settings for the configured broker, or for an embedded amqtt broker started here."""
    if settings.mqtt_url is not None:
        return settings, None
    broker = EmbeddedBroker().start()
    typer.echo(f"embedded MQTT broker (amqtt) on {broker.url}")
    return settings.model_copy(update={"mqtt_url": SecretStr(broker.url), "mqtt_protocol": "3.1.1"}), broker


def stop_broker(broker: EmbeddedBroker | None) -> threading.Thread | None:
    """Stop an embedded broker in the background: amqtt takes seconds to shut down, scoring need not wait."""
    if broker is None:
        return None
    stopping = threading.Thread(target=broker.stop, name="servicecast-demo-broker-stop")
    stopping.start()
    return stopping


def publish_live(
    fleet: DemoFleet, settings: Settings, engine: Engine, *, before_last: Callable[[], None] = lambda: None
) -> bool:
    """Publish the live steps to the broker the ingester listens on, calling `before_last` once all but the
    last step are stored; False if the ingester cannot subscribe."""
    url = settings.mqtt_url.get_secret_value()
    ingester = Ingester(
        settings=settings, engine=engine, endpoint=MqttEndpoint(url), client_id="servicecast-demo-ingest"
    )
    try:
        ingester.start()
        if not ingester.source.subscribed.wait(15):
            typer.echo("could not subscribe the ingester at the broker", err=True)
            return False
        started = time.monotonic()
        with DemoOpcUaMachine(url, settings.mqtt_protocol) as press:  # stopped at once if interrupted
            earlier, last = fleet.live_parts()
            parts = [_publish(earlier, url, fleet, settings)]
        # The press's messages count too: waiting for the fleet's alone can go on before the last are in.
        _wait_for(ingester, press.published + parts[0].sent, deadline=time.monotonic() + 120)
        before_last()
        parts.append(_publish(last, url, fleet, settings))
        _wait_for(ingester, press.published + sum(p.sent for p in parts), deadline=time.monotonic() + 120)
        valid, invalid = sum(p.valid for p in parts), sum(p.invalid for p in parts)
        typer.echo(
            f"live: published {valid} messages (+{invalid} deliberately bad) from "
            f"{fleet.run.config.machines} machines, the last {fleet.live_steps} steps, over MQTT QoS 1"
        )
        stats = ingester.stats
        typer.echo(
            f"ingested in {time.monotonic() - started:.1f} s: {stats.stored} stored, "
            f"{stats.duplicates} duplicates, {stats.quarantined} quarantined"
        )
    finally:
        ingester.stop()
    return True


def _publish(messages: list[Message], url: str, fleet: DemoFleet, settings: Settings) -> PublishReport:
    """Publish these live messages as the fleet's devices do."""
    return publish_messages(
        messages,
        url=url,
        period_s=fleet.run.config.step_seconds,
        client_id="servicecast-demo-publisher",
        protocol=settings.mqtt_protocol,
    )


def _wait_for(ingester: Ingester, messages: int, *, deadline: float) -> None:
    stats = ingester.stats
    while stats.stored + stats.duplicates + stats.quarantined < messages and time.monotonic() < deadline:
        time.sleep(0.05)
