"""`servicecast demo`: a populated fleet and the live chain on embedded defaults, then the console."""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer
from sqlalchemy import Engine, func, select

from api import alerts, auth, catalog, policy, routing
from api.alerts import OPEN_STATES
from fleet import errors, registry
from fleet.db import engine_from_settings, session
from fleet.redaction import redact_url
from fleet.settings import Settings
from fleet.tables import (
    Alert,
    Customer,
    Machine,
    ModelVersion,
    Offer,
    Prediction,
    Quarantine,
    Telemetry,
    utcnow,
)
from models import scoring
from servicecast import demo_crm, demo_fleet

KEYS_FILE = Path("var/demo-keys.txt")
# name, role, its customer, the accounts it looks after, and how the login table describes it
DEMO_USERS = (
    ("demo-admin", "admin", None, (), "everything: customers, grants, models"),
    ("demo-tech", "field_service", None, (), "alerts queue: ack, assign, resolve"),
    # Every account: acme's, globex's and umbrella's offers on alerts to approve (at any start hour, see
    # `python -m benchmarks.demo_offers`), and initech's alerts without one: it grants no offers.
    ("demo-am", "account_manager", None, ("acme", "globex", "initech", "umbrella"), "offers of all accounts"),
    ("demo-customer", "customer", "acme", (), "acme's own machines"),
)


def run_demo(
    settings: Settings, engine: Engine, *, fresh: bool, serve: bool = True, now: datetime | None = None
) -> int:
    """Backfill a fleet, train, publish live telemetry through a broker, act on predictions, serve the app;
    on `engine` (`demo_database.opened`, new for this run if `fresh`), disposed before the app serves.

    now: the demo's clock, where its fleet ends and its policy acts (default: the current time).
    """
    with sigterm_as_ctrl_c():
        return _run_demo(settings, engine, fresh=fresh, serve=serve, now=now)


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM stops the demo as Ctrl-C does: what it started is stopped on the way out (the OPC UA press,
    the ingester, the broker; while serving, uvicorn's graceful shutdown, then exit 0), not killed as it runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # raises KeyboardInterrupt
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_demo(settings: Settings, engine: Engine, *, fresh: bool, serve: bool, now: datetime | None) -> int:
    started = time.monotonic()
    catalog.default()  # a broken catalog stops the demo before it builds a fleet, not after training
    if "ingest_auto_register" not in settings.model_fields_set:
        settings = settings.model_copy(update={"ingest_auto_register": True})
    typer.echo(f"database: {redact_url(settings.database_url)}{' (new for this run)' if fresh else ''}")
    try:
        now = now or utcnow()
        fleet = demo_fleet.plan(settings, now)
        demo_fleet.register_customers(engine)
        demo_fleet.apply_types(engine)
        if demo_fleet.has_telemetry(engine):
            typer.echo(
                "history: the database holds telemetry already; reusing it and its models (point "
                "SERVICECAST_DATABASE_URL at an empty database, or unset it, for a new demo fleet)"
            )
            demo_fleet.ensure_models(engine)
        else:
            demo_fleet.store_history(fleet, engine)
            demo_fleet.train(engine)
        keys = _demo_keys(engine, KEYS_FILE)
        # All but the last live hour are scored first and field service takes the critical alerts that
        # opens: offers wait until a critical alert is assigned ("service first"), so the last hour's
        # predictions can then propose offers on those alerts. One hour apart, not the whole live part: a
        # machine that fails in between (repaired, its risk gone) has nothing left to sell.
        first = functools.partial(_score_and_assign, engine, settings, now, keys["demo-tech"])
        live_settings, broker = demo_fleet.start_broker(settings)
        try:
            if not demo_fleet.publish_live(fleet, live_settings, engine, before_last=first):
                return 1
        finally:
            stopping = demo_fleet.stop_broker(broker)
        _score_and_act(engine, settings, now)
        _print_summary(engine)
    finally:
        engine.dispose()
    typer.echo(f"\nready in {time.monotonic() - started:.0f} s")
    _print_login(settings, keys, serve=serve)
    if serve:
        _serve_and_act(settings)
    if stopping:
        stopping.join(timeout=30)
    return 0


def _score_and_act(engine: Engine, settings: Settings, now: datetime) -> None:
    """Score every machine with new telemetry, then turn the predictions into alerts and offers."""
    scored = scoring.score_once(engine=engine)
    statuses = ", ".join(f"{n} {status}" for status, n in scored.statuses.most_common()) or "none"
    typer.echo(
        f"scored {scored.machines} machines in {scored.seconds:.1f} s ({statuses}); "
        f"{scored.skipped_no_model} without a model"
    )
    report = policy.run_once(engine=engine, settings=settings, now=now)
    typer.echo(
        f"policy: {report.predictions} predictions → {report.alerts_opened_or_updated} alerts opened or "
        f"updated, {report.offers_proposed} offers proposed"
    )


def _score_and_assign(engine: Engine, settings: Settings, now: datetime, tech_key: str) -> None:
    """Score and act, then field service takes the critical alerts that opened."""
    _score_and_act(engine, settings, now)
    _assign_critical(engine, tech_key, now)


def _assign_critical(engine: Engine, key: str, now: datetime) -> None:
    """The technician with `key` assigns every open critical alert to themself, as the console's "assign"."""
    with session(engine) as sess:
        tech = auth.authenticate(sess, key)
        critical = sess.scalars(
            select(Alert).where(Alert.severity == "critical", Alert.status.in_(("open", "acknowledged")))
        ).all()
        for alert in critical:
            alerts.assign(sess, alert, tech.user_id, tech, now)
    typer.echo(f"field service: {tech.name} took the {len(critical)} critical alerts")


def _print_summary(engine: Engine) -> None:
    """What the console will show: per customer its machines, consent, open alerts and offers."""
    with session(engine) as sess:
        customers = sess.execute(select(Customer.id, Customer.tenant).order_by(Customer.tenant)).all()
        machines = _count_by(sess, Machine.customer_id)
        alerts = _count_by(sess, Alert.customer_id, Alert.status.in_(OPEN_STATES))
        proposed = _count_by(sess, Offer.customer_id, Offer.status == "proposed")
        purposes = registry.purposes_by_customer(sess, [cid for cid, _ in customers])
        severity = _count_by(sess, Alert.severity, Alert.status.in_(OPEN_STATES))
        totals = {
            name: sess.scalar(select(func.count()).select_from(table))
            for name, table in (
                ("telemetry rows", Telemetry),
                ("quarantined messages", Quarantine),
                ("model versions", ModelVersion),
                ("predictions", Prediction),
            )
        }
    typer.echo(
        f"\n{'customer':<10}{'machines':>10}  {'offers grant':<12}{'open alerts':>13}{'proposed offers':>17}"
    )
    for cid, tenant in customers:
        grant = "yes" if "offers" in purposes[cid] else "no"
        typer.echo(f"{tenant:<10}{machines[cid]:>10}  {grant:<12}{alerts[cid]:>13}{proposed[cid]:>17}")
    by_severity = ", ".join(f"{n} {s}" for s in ("critical", "high", "medium") if (n := severity[s]))
    typer.echo(
        f"{sum(machines.values())} machines, "
        + ", ".join(f"{n:,} {name}" for name, n in totals.items())
        + f"; {sum(alerts.values())} open alerts ({by_severity or 'none'}), "
        f"{sum(proposed.values())} proposed offers"
    )


def _grouped(column, *where):  # noqa: ANN001, ANN202
    return select(column, func.count()).where(*where).group_by(column)


def _count_by(sess, column, *where) -> Counter:  # noqa: ANN001
    return Counter(dict(sess.execute(_grouped(column, *where)).all()))


def _demo_keys(engine: Engine, path: Path) -> dict[str, str]:
    """A user per role (created once) with a fresh key each run; written to a file only the owner can read."""
    keys = {}
    for name, role, customer, accounts, _ in DEMO_USERS:
        try:
            _, keys[name] = auth.create_user(
                engine=engine, name=name, role=role, customer=customer, accounts=accounts
            )
        except errors.AlreadyExists:
            keys[name] = auth.issue_key(engine=engine, name=name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name}\t{key}\n" for name, key in keys.items()))
    path.chmod(0o600)
    return keys


def _print_login(settings: Settings, keys: dict[str, str], *, serve: bool) -> None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    if serve:
        typer.echo(f"\nconsole: {base}/   (API docs: {base}/docs)")
    typer.echo(f"log in with one of these API keys (also in {KEYS_FILE}):")
    roles = {name: (role, what) for name, role, _, _, what in DEMO_USERS}
    for name, key in keys.items():
        role, what = roles[name]
        typer.echo(f"  {role:<16}{name:<15}{key}   {what}")
    if serve:
        typer.echo("Ctrl-C stops the demo.")
    else:
        typer.echo("(--no-serve: not serving; `servicecast demo` serves the console on this data)")


def _serve_and_act(settings: Settings) -> None:
    """Serve the app until Ctrl-C, with the policy loop in a thread (as `servicecast policy` runs it)."""
    import uvicorn

    from api.app import create_app
    from ingest import quarantine

    settings = demo_crm.settings_with_receiver(settings)
    engine = engine_from_settings(settings)
    stop = threading.Event()
    loops = {"policy": policy.run_forever, "route": routing.run_router}  # as `servicecast policy` and `route`
    workers = [
        threading.Thread(
            target=loop,
            kwargs={"engine": engine, "settings": settings, "stop": stop},
            name=f"servicecast-{name}",
            daemon=True,
        )
        for name, loop in loops.items()
    ]
    for worker in workers:
        worker.start()
    try:
        app = create_app(settings)
        app.state.replay_quarantine = quarantine.replay  # the console's replay button
        demo_crm.install(app, settings)  # where the router delivers, and /admin/crm to see it
        uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="warning")
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
        engine.dispose()
