"""The store `benchmarks.policy` times the policy on: a fleet, its models, a past of offers, one scoring pass.

Everything goes through the product's own functions (registration, model registry, the policy's passes,
approvals, outcomes, findings, catalog versions), except what another process would have done: the
scorer's prediction rows (written through `scoring.write_batch`, the scorer's own write), the ingester's
two readings per machine, and the router marking an approval's CRM message delivered.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, create_engine, make_url, select, text, update

from api import alerts, auth, catalog, catalog_versions, offers, policy
from api.auth import Principal
from api.events import OFFER_APPROVED
from benchmarks.score import train_all
from fleet import registration, telemetry
from fleet.db import session
from fleet.settings import Settings
from fleet.tables import Alert, Customer, Offer, OutboxMessage, utcnow
from models import scoring, versions
from simulators.machine_types import MACHINE_TYPES

TIERS = ("basic", "standard", "premium")
SEGMENTS = (None, "small", "mid", "key_account")


@dataclass(frozen=True)
class Shape:
    """What the store holds: its size and the shares that make the measured pass's stream."""

    machines: int = 10_000
    machines_per_customer: int = 20
    offers_share: float = 0.8  # customers that grant `offers`
    at_risk: float = 0.03  # machines whose prediction of the measured pass is at or above the threshold
    open_before: float = 0.015  # machines with an open alert (and a proposed offer) before the pass
    ledger: int = 3_000  # decided offers in the outcome ledger
    history_days: int = 90
    no_data: float = 0.01  # predictions without a risk (insufficient data)
    train_machines: int = 30
    seed: int = 7


@dataclass
class Store:
    """The built store: its clock and what the measured pass will meet."""

    now: datetime
    thresholds: dict[str, float]
    ledger: int
    open_alerts: int
    predictions: int
    at_risk: int


def build(engine: Engine, settings: Settings, shape: Shape) -> Store:
    """Fleet, models, a ledger of `shape.ledger` decided offers, open alerts, and one pass of predictions."""
    rng = np.random.default_rng(shape.seed)
    now = utcnow().replace(microsecond=0)
    fleet = _register(engine, shape, rng, now)
    registered = train_all(engine, shape.train_machines, shape.seed)
    with session(engine) as sess:
        trained = versions.thresholds(sess, registered.values())
    thresholds = {t: trained.get(v, alerts.ALERT_MIN_RISK) for t, v in registered.items()}
    fleet["version"] = fleet["machine_type"].map(registered)
    fleet["threshold"] = fleet["machine_type"].map(thresholds)
    people = _people(engine)
    consenting = fleet[fleet["offers"]]
    start = now - timedelta(days=shape.history_days + 2)
    sampled = decided = 0
    for day in range(shape.history_days):
        at = start + timedelta(days=day)
        # Not every risky prediction becomes an offer (a critical alert comes first, the contact budget):
        # each day asks for what the ledger still lacks at the share that got through so far.
        through = decided / sampled if sampled else 0.5
        wanted = (shape.ledger - decided) / (shape.history_days - day) / max(through, 0.2)
        chosen = consenting.sample(min(len(consenting), max(1, round(wanted))), random_state=day + shape.seed)
        _predict(engine, chosen, rng, at, risky=np.ones(len(chosen), dtype=bool))
        policy.run_once(engine=engine, settings=settings, now=at)
        sampled += len(chosen)
        decided += _decide(engine, settings, people, rng, at)
    _learning_in_force(engine, people["admin"], now - timedelta(days=1))
    before = fleet.sample(int(shape.machines * shape.open_before), random_state=shape.seed)
    _predict(engine, before, rng, now - timedelta(hours=1), risky=np.ones(len(before), dtype=bool))
    policy.run_once(engine=engine, settings=settings, now=now - timedelta(hours=1))
    risky = _measured_risky(fleet, before, shape, rng)
    _predict(engine, fleet, rng, now, risky=risky, no_data=shape.no_data)
    with session(engine) as sess:
        decided = len(sess.scalars(select(Offer.id).where(Offer.status.in_(("accepted", "declined")))).all())
        open_alerts = len(sess.scalars(select(Alert.id).where(Alert.status.in_(alerts.OPEN_STATES))).all())
    return Store(now, thresholds, decided, open_alerts, len(fleet), int(risky.sum()))


def _register(engine: Engine, shape: Shape, rng: np.random.Generator, now: datetime) -> pd.DataFrame:
    """Customers (segments, consent) and machines (types, tiers), each with two live readings."""
    n_customers = max(1, shape.machines // shape.machines_per_customer)
    tenants = [f"customer-{i:05d}" for i in range(n_customers)]
    granting = set(rng.choice(tenants, int(round(n_customers * shape.offers_share)), replace=False))
    types = list(MACHINE_TYPES)[:3]
    rows = [
        {
            "tenant": tenants[i % n_customers],
            "machine": f"m-{i:06d}",
            "machine_type": types[i % len(types)],
            "contract_tier": TIERS[int(rng.choice(3, p=[0.5, 0.35, 0.15]))],
        }
        for i in range(shape.machines)
    ]
    purposes = {t: ("service", "offers") if t in granting else ("service",) for t in tenants}
    ids = registration.register_machines(engine=engine, machines=rows, purposes=purposes)
    with session(engine) as sess:
        for customer in sess.scalars(select(Customer)):
            customer.segment = SEGMENTS[customer.id % len(SEGMENTS)]
    readings = []
    for row in rows:
        customer_id, machine_id = ids[(row["tenant"], row["machine"])]
        for seq, ago in ((1, 2), (2, 1)):
            at = now - timedelta(minutes=ago)
            readings.append(
                {
                    "customer_id": customer_id,
                    "machine_id": machine_id,
                    "seq": seq,
                    "ts": at,
                    "readings": {"temperature_c": 60.0},
                    "received_at": at,
                }
            )
    with engine.begin() as conn:
        telemetry.insert_telemetry(conn, readings)
    frame = pd.DataFrame(rows)
    frame["customer_id"] = [ids[(r["tenant"], r["machine"])][0] for r in rows]
    frame["machine_id"] = [ids[(r["tenant"], r["machine"])][1] for r in rows]
    frame["offers"] = frame["tenant"].isin(granting)
    return frame


def _people(engine: Engine) -> dict[str, Principal]:
    """An admin, an account manager and a technician, as users of the store."""
    out = {}
    for key, role in (("admin", "admin"), ("am", "account_manager"), ("tech", "field_service")):
        user, _ = auth.create_user(engine=engine, name=key, role=role)
        out[key] = Principal(user.id, key, role, None)
    return out


def _predict(  # noqa: PLR0913
    engine: Engine,
    machines: pd.DataFrame,
    rng: np.random.Generator,
    at: datetime,
    *,
    risky: np.ndarray,
    no_data: float = 0.0,
) -> None:
    """One prediction per machine at `at`, as the scorer writes them: risky ones at or above the threshold."""
    modes = {name: [m.name for m in t.modes] for name, t in MACHINE_TYPES.items()}
    rows = []
    for (_, machine), hot in zip(machines.iterrows(), risky, strict=True):
        threshold = float(machine["threshold"])
        lost = not hot and rng.random() < no_data
        risk = rng.uniform(threshold, 1.0) if hot else rng.uniform(0.01, 0.8 * threshold)
        hours = float(rng.uniform(24.0, 400.0))
        rows.append(
            {
                "customer_id": int(machine["customer_id"]),
                "machine_id": int(machine["machine_id"]),
                "ts": at,
                "created_at": at,
                "status": "insufficient_data" if lost else "ok",
                "risk": None if lost else float(risk),
                "failure_mode": None if lost else str(rng.choice(modes[machine["machine_type"]])),
                "rul_hours": None if lost else hours,
                "rul_low": None if lost else hours * 0.7,
                "rul_high": None if lost else hours * 1.3,
                "eta": None if lost else at + timedelta(hours=hours),
                "eta_sensor": None,
                "horizon_hours": 168.0,
                "contributions": [],
                "explanation": None,
                "model_version": machine["version"],
            }
        )
    due = pd.DataFrame({"machine_id": machines["machine_id"].tolist(), "max_received": at})
    for i in range(0, len(rows), 2500):
        with engine.begin() as conn:
            scoring.write_batch(conn, rows[i : i + 2500], due.iloc[i : i + 2500])


def _decide(engine: Engine, settings: Settings, people: dict, rng: np.random.Generator, at: datetime) -> int:
    """The day's proposals approved, delivered and answered (a quarter accepted); its alerts resolved.

    Returns how many offers were decided."""
    with session(engine) as sess:
        proposed = sess.scalars(select(Offer).where(Offer.status == "proposed").order_by(Offer.id)).all()
        for offer in proposed:
            offers.approve(sess, offer, by=people["am"], now=at + timedelta(hours=2), settings=settings)
        sess.flush()
        sess.execute(
            update(OutboxMessage)
            .where(OutboxMessage.offer_id.in_([o.id for o in proposed]))
            .where(OutboxMessage.event_type == OFFER_APPROVED)
            .values(status="delivered", delivered_at=at + timedelta(hours=3))
        )
        for offer in proposed:
            won = rng.random() < 0.25
            offers.record_outcome(
                sess, offer, by=None, now=at + timedelta(days=1), accepted=won, revenue=None
            )
        opened = sess.scalars(select(Alert).where(Alert.status == "open").order_by(Alert.id)).all()
        for alert in opened:
            alerts.acknowledge(sess, alert, people["tech"], at + timedelta(hours=4))
            finding = "confirmed_fault" if rng.random() < 0.7 else "no_fault_found"
            alerts.resolve(
                sess,
                alert,
                finding=finding,
                text=None,
                parts_used=[],
                by=people["tech"],
                now=at + timedelta(hours=20),
            )
    return len(proposed)


def _learning_in_force(engine: Engine, admin: Principal, at: datetime) -> None:
    """A catalog version like the shipped one whose offers the learning policy chooses, activated at `at`."""
    shipped = catalog.default()
    source = catalog.DEFAULT_FILE.read_text(encoding="utf-8")
    source = source.replace(f"version: {shipped.version}\n", f"version: {shipped.version + 1}\n", 1)
    source = source.replace("policy: {name: first_fit", "policy: {name: learning", 1)
    with session(engine) as sess:
        catalog_versions.add(sess, source=source, by=admin, now=at)
        catalog_versions.activate(sess, version=shipped.version + 1, by=admin, now=at)


def _measured_risky(
    fleet: pd.DataFrame, before: pd.DataFrame, shape: Shape, rng: np.random.Generator
) -> np.ndarray:
    """Which machines are at risk in the measured pass: half of those with an open alert, and others."""
    wanted = int(shape.machines * shape.at_risk)
    again = before["machine_id"].sample(min(len(before) // 2, wanted), random_state=shape.seed).tolist()
    rest = fleet.loc[~fleet["machine_id"].isin(before["machine_id"]), "machine_id"]
    fresh = rest.sample(wanted - len(again), random_state=shape.seed + 1).tolist()
    return fleet["machine_id"].isin(again + fresh).to_numpy()


def keep(url: str, store: Store, folder: Path) -> None:
    """Keep a copy of the built store (no connection may be open to it) and what it holds in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    kept = _copy(url, folder, "kept")
    described = dataclasses.asdict(store) | {"now": store.now.isoformat(), "url": kept}
    (folder / "store.json").write_text(json.dumps(described), encoding="utf-8")


def copy(folder: Path, into: Path) -> tuple[str, Store]:
    """A copy of the kept store to time a pass on, and what it holds."""
    described = json.loads((folder / "store.json").read_text(encoding="utf-8"))
    copied = _copy(described.pop("url"), into, "copy")
    described["now"] = datetime.fromisoformat(described["now"])
    return copied, Store(**described)


def _copy(source: str, folder: Path, kind: str) -> str:
    """SQLite: the file copied into `folder`; PostgreSQL: a database made from it. Returns its URL."""
    url = make_url(source)
    if url.get_backend_name() == "sqlite":
        target = folder / f"policy-{kind}.db"
        shutil.copy(url.database, target)
        return f"sqlite:///{target}"
    name = f"policy_{kind}_{uuid.uuid4().hex[:8]}"
    _admin(url, f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"')
    return url.set(database=name).render_as_string(hide_password=False)


def drop_copy(url: str) -> None:
    """Drop a PostgreSQL copy made by `copy` (a SQLite copy goes with its folder)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        _admin(parsed.set(database="postgres"), f'DROP DATABASE "{parsed.database}"')


def _admin(url, sql: str) -> None:  # noqa: ANN001
    """Run a statement outside a transaction on the server of `url`, connected to its `postgres` database."""
    engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()
