"""`servicecast demo`: the whole chain on embedded defaults, for a newcomer."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from api import auth, policy
from fleet import errors, migrate, telemetry
from fleet.db import engine_from_settings, session
from fleet.settings import MqttEndpoint, Settings
from fleet.tables import Alert, Offer, Quarantine
from ingest.service import Ingester
from servicecast.broker import EmbeddedBroker
from simulators.config import FleetConfig
from simulators.engine import simulate
from simulators.live import publish_run

log = logging.getLogger(__name__)
DEMO_USERS = (
    ("demo-admin", "admin", None, ()),
    ("demo-tech", "field_service", None, ()),
    ("demo-am", "account_manager", None, ("acme", "globex", "initech")),
    ("demo-customer", "customer", "acme", ()),
)


def run_demo(settings: Settings, *, serve: bool = True) -> int:
    """Publish a simulated fleet through a broker into the database, then serve the API on it."""
    if "ingest_auto_register" not in settings.model_fields_set:
        settings = settings.model_copy(update={"ingest_auto_register": True})
    engine = engine_from_settings(settings)
    migrate.ensure_schema(engine)
    typer.echo(f"database: {settings.database_url}")
    try:
        if not _ingest_simulated_fleet(settings, engine):
            return 1
        report = policy.run_once(engine=engine, settings=settings)
        typer.echo(
            f"policy: {report.alerts_opened_or_updated} alerts, {report.offers_proposed} offers proposed"
        )
        _print_summary(engine)
        keys = _demo_keys(engine, Path("var/demo-keys.txt"))
    finally:
        engine.dispose()
    if serve:
        _serve(settings, keys)
    return 0


def _ingest_simulated_fleet(settings: Settings, engine: Engine) -> bool:
    broker = None
    if settings.mqtt_url is None:
        broker = EmbeddedBroker().start()
        settings = settings.model_copy(update={"mqtt_url": SecretStr(broker.url), "mqtt_protocol": "3.1.1"})
        typer.echo(f"embedded MQTT broker (amqtt) on {broker.url}")
    url = settings.mqtt_url.get_secret_value()
    endpoint = MqttEndpoint(url)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=settings.demo_days)
    config = FleetConfig(
        machines=settings.demo_machines,
        days=settings.demo_days,
        seed=7,
        step_seconds=settings.demo_step_s,
        start=start,
        bad_payload_rate=0.002,
    )
    ingester = Ingester(
        settings=settings, engine=engine, endpoint=endpoint, client_id="servicecast-demo-ingest"
    )
    try:
        ingester.start()
        if not ingester.source.subscribed.wait(15):
            typer.echo("could not subscribe the ingester at the broker", err=True)
            return False
        started = time.monotonic()
        sent = publish_run(
            simulate(config), url=url, database_url=settings.database_url, protocol=settings.mqtt_protocol
        )
        typer.echo(
            f"published {sent.valid} messages (+{sent.invalid} deliberately bad) from "
            f"{config.machines} simulated machines over MQTT, QoS 1"
        )
        stats, deadline = ingester.stats, time.monotonic() + 120
        while stats.stored + stats.duplicates + stats.quarantined < sent.sent and time.monotonic() < deadline:
            time.sleep(0.1)
        typer.echo(
            f"ingested in {time.monotonic() - started:.1f} s: {stats.stored} stored, "
            f"{stats.duplicates} duplicates, {stats.quarantined} quarantined"
        )
    finally:
        ingester.stop()
        if broker:
            broker.stop()
    return True


def _print_summary(engine: Engine) -> None:
    rows = telemetry.summary(engine)
    typer.echo(f"\n{'tenant':<10}{'machine':<17}{'rows':>6}{'seq':>12}  last reading")
    for row in rows[:8]:
        seqs = f"{row['first_seq']}..{row['last_seq']}"
        last = f"{row['last_ts']:%Y-%m-%d %H:%M}"
        typer.echo(f"{row['tenant']:<10}{row['machine']:<17}{row['rows']:>6}{seqs:>12}  {last}")
    if len(rows) > 8:
        typer.echo(f"… and {len(rows) - 8} more machines")
    with session(engine) as sess:
        counts = {name: sess.scalar(select(func.count()).select_from(t)) for name, t in _COUNTED}
    typer.echo("\n" + ", ".join(f"{name}: {n}" for name, n in counts.items()))


_COUNTED = (("quarantined messages", Quarantine), ("alerts", Alert), ("offers", Offer))


def _demo_keys(engine: Engine, path: Path) -> dict[str, str]:
    """A user per role with a fresh key each run; written to a file only the owner can read."""
    keys = {}
    for name, role, customer, accounts in DEMO_USERS:
        try:
            _, keys[name] = auth.create_user(
                engine=engine, name=name, role=role, customer=customer, accounts=accounts
            )
        except errors.AlreadyExists:
            keys[name] = auth.issue_key(engine=engine, name=name)
        except errors.NotFound:
            continue  # e.g. a demo fleet without that customer
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name}\t{key}\n" for name, key in keys.items()))
    path.chmod(0o600)
    typer.echo(f"\nAPI keys (also in {path}):")
    for name, key in keys.items():
        typer.echo(f"  {name:<14} {key}")
    return keys


def _serve(settings: Settings, keys: dict[str, str]) -> None:
    import uvicorn

    from api.app import create_app

    base = f"http://{settings.api_host}:{settings.api_port}"
    header = f"Authorization: Bearer {keys['demo-tech']}"
    typer.echo(f"\nAPI on {base}/docs — try:\n  curl -H '{header}' {base}/api/v1/alerts")
    typer.echo("Ctrl-C stops the demo.")
    uvicorn.run(
        create_app(settings, run_policy=True),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
    )
