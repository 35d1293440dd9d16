"""A small world for API tests: two customers, machines, a user per role, predictions through the policy."""

from __future__ import annotations

import functools
import io
import ssl
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from api import auth, policy
from api.app import create_app
from fleet import registry, telemetry
from fleet.db import session
from fleet.settings import Settings
from fleet.tables import Alert, Machine, Offer, Prediction, Telemetry, utcnow
from tests import services, world_copies

# The worlds' time: on the hour, 11 days before the code's own clock (`utcnow`), so that on any date their
# offers are still open (they expire 30 days after NOW) and their forecasts of 24 h and 240 h already past.
NOW = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=11)


@dataclass
class World:
    """Ids and API keys of what `build_world` created."""

    settings: Settings
    engine: Engine
    tokens: dict[str, str] = field(default_factory=dict)
    customers: dict[str, int] = field(default_factory=dict)
    machines: dict[str, list[int]] = field(default_factory=dict)
    alerts: dict[str, list[int]] = field(default_factory=dict)
    offers: dict[str, list[int]] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)

    def client(self) -> TestClient:
        """A client on the real app (lifespan included)."""
        return TestClient(create_app(self.settings))

    def headers(self, who: str) -> dict[str, str]:
        """Authorization header of a user of the world."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def add_prediction(
    engine: Engine, machine_id: int, *, risk: float, mode: str = "bearing_wear", hours_ahead: float = 120.0
) -> int:
    """A prediction row as the scorer would write it; returns its id."""
    with session(engine) as sess:
        machine = sess.get(Machine, machine_id)
        prediction = Prediction(
            customer_id=machine.customer_id,
            machine_id=machine_id,
            ts=NOW,
            status="ok",
            horizon_hours=168.0,
            risk=risk,
            failure_mode=mode,
            rul_hours=hours_ahead,
            rul_low=hours_ahead * 0.7,
            rul_high=hours_ahead * 1.3,
            eta=NOW + timedelta(hours=hours_ahead),
            eta_sensor="vibration_rms_mm_s",
            contributions=[
                {"sensor": "vibration_rms_mm_s", "delta": 0.31, "text": "vibration rose 40 % in 3 days"}
            ],
            explanation="vibration rose 40 % in 3 days",
            model_version="test-1",
        )
        sess.add(prediction)
        sess.flush()
        return prediction.id


def build_world(database_url: str, **settings: object) -> World:
    """Customers acme (offers granted) and globex (offers granted), 3 machines each, one user per role."""
    world = World(Settings(database_url=database_url, **settings), None)  # type: ignore[arg-type]
    claim = world_copies.claim(world, database_url, settings)
    if claim.copied:
        return world
    with world.client() as client:
        world.engine = client.app.state.engine
        for tenant in ("acme", "globex"):
            registry.add_customer(engine=world.engine, tenant=tenant, offers=True)
            codes = [f"{tenant}-pump-{i}" for i in range(3)]
            for code in codes:
                registry.add_machine(
                    engine=world.engine, tenant=tenant, code=code, machine_type="centrifugal_pump"
                )
        with session(world.engine) as sess:
            for tenant in ("acme", "globex"):
                customer = registry.get_customer(sess, tenant)
                world.customers[tenant] = customer.id
                query = select(Machine.id).where(Machine.customer_id == customer.id).order_by(Machine.id)
                world.machines[tenant] = list(sess.scalars(query))
        people = {
            "admin": ("admin", None, ()),
            "tech": ("field_service", None, ()),
            "am-acme": ("account_manager", None, ("acme",)),
            "am-globex": ("account_manager", None, ("globex",)),
            "cust-acme": ("customer", "acme", ()),
            "cust-globex": ("customer", "globex", ()),
        }
        for name, (role, customer, accounts) in people.items():
            user, token = auth.create_user(
                engine=world.engine, name=name, role=role, customer=customer, accounts=accounts
            )
            world.tokens[name], world.users[name] = token, user.id
        for tenant in ("acme", "globex"):
            add_prediction(
                world.engine, world.machines[tenant][0], risk=0.9, hours_ahead=24
            )  # critical alert
            add_prediction(world.engine, world.machines[tenant][1], risk=0.75, hours_ahead=240)  # offer
        policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
        with session(world.engine) as sess:
            for tenant, cid in world.customers.items():
                world.alerts[tenant] = list(sess.scalars(select(Alert.id).where(Alert.customer_id == cid)))
                world.offers[tenant] = list(sess.scalars(select(Offer.id).where(Offer.customer_id == cid)))
    claim.keep(world)
    return world


def alert_naming(world: World, machine_id: int, likely_modes: list[dict]) -> int:
    """The alert the policy opens for a seal-leak prediction also naming `likely_modes`; returns its id."""
    prediction = add_prediction(world.engine, machine_id, risk=0.9, mode="seal_leak", hours_ahead=24)
    with session(world.engine) as sess:
        sess.get(Prediction, prediction).likely_modes = likely_modes
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        return sess.scalar(select(Alert.id).where(Alert.machine_id == machine_id))


def store_minutes(world: World, start: datetime, minutes: int, readings_of) -> list[dict]:
    """A reading a minute (plus 0-6 s) from `start` for acme's first machine, stored; returns the rows."""
    rows = [
        {
            "customer_id": world.customers["acme"],
            "machine_id": world.machines["acme"][0],
            "seq": i + 1,
            "ts": start + timedelta(minutes=i, seconds=i % 7),
            "readings": readings_of(i),
            "received_at": start,
        }
        for i in range(minutes)
    ]
    with world.engine.begin() as conn:
        telemetry.insert_telemetry(conn, rows)
    return rows


def resolve_alert(world: World, alert_id: int, text: str) -> None:
    """A technician acknowledges the alert and resolves it with a finding in his own words."""
    with world.client() as client:
        tech = world.headers("tech")
        assert client.post(f"/api/v1/alerts/{alert_id}/ack", headers=tech).status_code == 200
        body = {"finding": "other", "text": text}
        assert client.post(f"/api/v1/alerts/{alert_id}/resolve", json=body, headers=tech).status_code == 200


def store_fw(world: World, fw: str, readings_of) -> None:  # noqa: ANN001
    """Two minutes of acme's first machine from NOW, the first reading sent with firmware string `fw`."""
    store_minutes(world, NOW, 2, readings_of)
    with world.engine.begin() as conn:
        conn.execute(update(Telemetry).where(Telemetry.seq == 1).values(fw=fw))


def exported(world: World, who: str = "cust-acme") -> zipfile.ZipFile:
    """The caller's data export (GET /api/v1/export), opened."""
    with world.client() as client:
        answer = client.get("/api/v1/export", headers=world.headers(who))
    assert answer.status_code == 200, answer.text
    return zipfile.ZipFile(io.BytesIO(answer.content))


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app served by one uvicorn worker in a thread, as `servicecast api` serves it; yields its URL."""
    port = services.free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    services.wait_port(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@functools.cache
def _verify() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def client_of(base: str, *, timeout: float) -> httpx.Client:
    """An HTTP client of a `served` app. httpx loads the CA bundle for every client (~30 ms of CPU), plain
    HTTP though it is: here once per process."""
    return httpx.Client(base_url=base, timeout=timeout, verify=_verify())
