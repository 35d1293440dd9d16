"""Ground truth in the database: the run record, its failure and maintenance events, and reading them back."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, Engine, select

from fleet.tables import Customer, FailureEvent, Machine, MaintenanceEvent, SimulationRunRecord, utcnow
from simulators.config import FleetConfig
from simulators.engine import SimulationRun
from simulators.registration import MachineIds
from simulators.timeline import FAILURE_COLUMNS, MAINTENANCE_COLUMNS

BATCH = 5000


def config_dict(config: FleetConfig) -> dict:
    """A FleetConfig as JSON-ready values (the inverse of `fleet_config`)."""
    out = dataclasses.asdict(config)
    out["start"] = config.start.isoformat()
    out["tenants"] = list(config.tenants)
    out["type_mix"] = [[name, weight] for name, weight in config.type_mix]
    out["modes"] = None if config.modes is None else list(config.modes)
    return out


def fleet_config(data: dict) -> FleetConfig:
    """The FleetConfig a run record was made from: re-simulating it gives the same telemetry."""
    values = dict(data)
    values["start"] = datetime.fromisoformat(values["start"])
    values["tenants"] = tuple(values["tenants"])
    values["type_mix"] = tuple((name, float(w)) for name, w in values["type_mix"])
    return FleetConfig(**values)


def record_run(conn: Connection, *, kind: str, seed: int | None, config: dict) -> int:
    """The id of the run record for this config, created on first use (same config → same record)."""
    body = json.dumps({"kind": kind, "config": config}, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(body.encode()).hexdigest()
    found = conn.scalar(select(SimulationRunRecord.id).where(SimulationRunRecord.digest == digest))
    if found is not None:
        return found
    table = SimulationRunRecord.__table__
    return conn.execute(
        table.insert()
        .values(kind=kind, seed=seed, config=config, digest=digest, created_at=utcnow())
        .returning(table.c.id)
    ).scalar_one()


def _when(value: object) -> datetime | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def write_events(
    engine: Engine,
    *,
    kind: str,
    seed: int | None,
    config: dict,
    ids: MachineIds,
    failures: pd.DataFrame,
    maintenance: pd.DataFrame | None = None,
) -> int:
    """Store a run record and its events for registered machines (`ids`), once; returns the run id."""
    with engine.begin() as conn:
        run_id = record_run(conn, kind=kind, seed=seed, config=config)
        done = conn.scalar(
            select(FailureEvent.id).where(FailureEvent.run_id == run_id).limit(1)
        ) or conn.scalar(select(MaintenanceEvent.id).where(MaintenanceEvent.run_id == run_id).limit(1))
        if done is not None:
            return run_id
        rows = []
        for f in failures.to_dict("records"):
            customer_id, machine_id = ids[(f["tenant"], f["machine"])]
            rows.append(
                {
                    "run_id": run_id,
                    "customer_id": customer_id,
                    "machine_id": machine_id,
                    "ts": _when(f["ts"]),
                    "mode": f["mode"],
                    "has_precursor": bool(f["has_precursor"]),
                    "onset": _when(f["onset"]),
                    "repaired": _when(f["repaired"]),
                }
            )
        _insert(conn, FailureEvent, rows)
        rows = []
        for m in [] if maintenance is None else maintenance.to_dict("records"):
            customer_id, machine_id = ids[(m["tenant"], m["machine"])]
            rows.append(
                {
                    "run_id": run_id,
                    "customer_id": customer_id,
                    "machine_id": machine_id,
                    "ts": _when(m["ts"]),
                    "end": _when(m["end"]),
                    "kind": m["kind"],
                    "found_mode": None
                    if m["found_mode"] is None or pd.isna(m["found_mode"])
                    else m["found_mode"],
                }
            )
        _insert(conn, MaintenanceEvent, rows)
    return run_id


def _insert(conn: Connection, table, rows: list[dict]) -> None:  # noqa: ANN001
    for i in range(0, len(rows), BATCH):
        conn.execute(table.__table__.insert(), rows[i : i + BATCH])


def write_run(engine: Engine, run: SimulationRun, ids: MachineIds) -> int:
    """Store a simulated fleet's failures and maintenance; returns the run id."""
    return write_events(
        engine,
        kind="fleet",
        seed=run.config.seed,
        config=config_dict(run.config),
        ids=ids,
        failures=run.failures,
        maintenance=run.maintenance,
    )


def list_runs(engine: Engine) -> pd.DataFrame:
    """Stored runs: id, kind, seed, config, created_at (oldest first)."""
    query = select(
        SimulationRunRecord.id,
        SimulationRunRecord.kind,
        SimulationRunRecord.seed,
        SimulationRunRecord.config,
        SimulationRunRecord.created_at,
    ).order_by(SimulationRunRecord.id)
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).all(), columns=["id", "kind", "seed", "config", "created_at"])


def read_failures(engine: Engine, run_id: int) -> pd.DataFrame:
    """A run's failures with the columns and order of `SimulationRun.failures`."""
    e = FailureEvent
    query = (
        select(
            Customer.tenant,
            Machine.code,
            Machine.machine_type,
            e.ts,
            e.mode,
            e.has_precursor,
            e.onset,
            e.repaired,
        )
        .join(Customer, e.customer_id == Customer.id)
        .join(Machine, e.machine_id == Machine.id)
        .where(e.run_id == run_id)
        .order_by(e.ts, Machine.code)
    )
    frame = _frame(engine, query, FAILURE_COLUMNS, ("ts", "onset", "repaired"))
    frame["has_precursor"] = frame["has_precursor"].astype(bool)
    return frame


def read_maintenance(engine: Engine, run_id: int) -> pd.DataFrame:
    """A run's maintenance visits and repairs with the columns and order of `SimulationRun.maintenance`."""
    e = MaintenanceEvent
    query = (
        select(Customer.tenant, Machine.code, Machine.machine_type, e.ts, e.end, e.kind, e.found_mode)
        .join(Customer, e.customer_id == Customer.id)
        .join(Machine, e.machine_id == Machine.id)
        .where(e.run_id == run_id)
        .order_by(e.ts, Machine.code, e.kind)
    )
    return _frame(engine, query, MAINTENANCE_COLUMNS, ("ts", "end"))


def _frame(engine: Engine, query, columns: list[str], times: tuple[str, ...]) -> pd.DataFrame:  # noqa: ANN001
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=columns)
    for col in times:
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame
