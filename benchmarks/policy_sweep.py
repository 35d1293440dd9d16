"""The offer sweep at scale, for `benchmarks.policy --closed-offers N`: a ledger grown by closed offers, and
the sweep's own time.

Closed offers (withdrawn and rejected, never in the outcome ledger the chooser trains on) are what a year of
passes leaves behind; they are inserted in bulk as copies of a decided offer of the store, spread over its
customers' machines, so that the pass meets the same chooser and the same open offers.
"""

from __future__ import annotations

import statistics
import time

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from api import offer_lifecycle
from fleet.db import for_writing, session
from fleet.settings import Settings
from fleet.tables import Machine, Offer

CHUNK = 10_000
CLOSED = ("withdrawn", "rejected")


def add_closed_offers(engine: Engine, count: int) -> None:
    """`count` closed offers, copies of the store's first decided offer, over its machines in turn."""
    with session(engine) as sess:
        model = sess.scalars(select(Offer).where(Offer.status == "declined").order_by(Offer.id)).first()
        row = {c.key: getattr(model, c.key) for c in Offer.__mapper__.column_attrs if c.key != "id"}
        machines = sess.execute(select(Machine.id, Machine.customer_id).order_by(Machine.id)).all()
    row |= {"prediction_id": None, "alert_id": None, "revenue": None}
    for start in range(0, count, CHUNK):
        rows = []
        for i in range(start, min(count, start + CHUNK)):
            machine_id, customer_id = machines[i % len(machines)]
            status = CLOSED[i % len(CLOSED)]
            rows.append(row | {"machine_id": machine_id, "customer_id": customer_id, "status": status})
        with engine.begin() as conn:
            conn.execute(insert(Offer), rows)


def time_sweep(engine: Engine, settings: Settings, now, *, repeats: int = 5) -> dict:  # noqa: ANN001
    """The sweep alone, `repeats` times in a transaction each, rolled back: each meets the same offers."""
    walls, cpus = [], []
    for _ in range(repeats):
        with Session(for_writing(engine)) as sess:
            wall, cpu = time.perf_counter(), time.process_time()
            offer_lifecycle.sweep(sess, now=now, settings=settings)
            sess.flush()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            sess.rollback()
    with engine.connect() as conn:
        offers = conn.scalar(select(Offer.id).order_by(Offer.id.desc()).limit(1))
    return {
        "sweep_offers_in_store": offers,
        "sweep_ms_median": 1000 * statistics.median(walls),
        "sweep_cpu_ms_median": 1000 * statistics.median(cpus),
    }
