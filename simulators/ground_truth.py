"""Ground truth in the database: the run record, and its failures and maintenance as labels, read back."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, Engine, select

from fleet import labels, machine_types
from fleet.db import for_writing
from fleet.registration import MachineIds
from fleet.tables import SimulationRunRecord, utcnow
from simulators.config import FleetConfig
from simulators.engine import SimulationRun
from simulators.timeline import FAILURE_COLUMNS, MAINTENANCE_COLUMNS


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


def run_ref(run_id: int) -> str:
    """The `ref` of the labels a simulation run wrote."""
    return f"run:{run_id}"


Parts = Callable[[int, str | None], str]


def _parts_of(conn: Connection, ids: MachineIds) -> Parts:
    """(machine id, failure mode) → the component the machine's type says that mode belongs to, else ''."""
    declared = machine_types.declared_for(conn, [machine_id for _, machine_id in ids.values()])

    def component(machine_id: int, mode: str | None) -> str:
        found = declared[machine_id][1]
        return (found and found.component_of(mode)) or ""

    return component


def _failure(f: dict, ids: MachineIds, ref: str, parts: Parts) -> dict:
    customer_id, machine_id = ids[(f["tenant"], f["machine"])]
    return {
        "customer_id": customer_id,
        "machine_id": machine_id,
        "ts": _when(f["ts"]),
        "kind": "failure",
        "component": parts(machine_id, f["mode"]),
        "mode": f["mode"],
        "source": "simulator",
        "ref": ref,
        "precursor": bool(f["has_precursor"]),
        "onset": _when(f["onset"]),
        "end": _when(f["repaired"]),
    }


def _visit(m: dict, ids: MachineIds, ref: str, parts: Parts) -> dict:
    customer_id, machine_id = ids[(m["tenant"], m["machine"])]
    found = None if m["found_mode"] is None or pd.isna(m["found_mode"]) else m["found_mode"]
    return {
        "customer_id": customer_id,
        "machine_id": machine_id,
        "ts": _when(m["ts"]),
        "kind": "maintenance" if found is None else "replacement",
        "component": parts(machine_id, found),
        "mode": found,
        "source": "simulator",
        "ref": ref,
        "activity": m["kind"],
        "end": _when(m["end"]),
    }


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
    """Store a run record and its events as labels (source `simulator`) of registered machines, once.

    A failure's or found wear's component is the one the machine's type says its mode belongs to, else none
    (a type no types file defines yet: apply the types first, as `simulate fleet` does).
    """
    with for_writing(engine).begin() as conn:  # finds the run record, then writes
        run_id = record_run(conn, kind=kind, seed=seed, config=config)
        ref = run_ref(run_id)
        if labels.any_with_ref(conn, ref):
            return run_id
        parts = _parts_of(conn, ids)
        rows = [_failure(f, ids, ref, parts) for f in failures.to_dict("records")]
        if maintenance is not None:
            rows += [_visit(m, ids, ref, parts) for m in maintenance.to_dict("records")]
        labels.write(conn, rows)
    return run_id


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
    with engine.connect() as conn:
        frame = labels.read(conn, kinds=("failure",), ref=run_ref(run_id))
    frame = frame.rename(columns={"precursor": "has_precursor", "end": "repaired"})
    frame = frame.sort_values(["ts", "machine"], kind="mergesort").reset_index(drop=True)
    frame["has_precursor"] = frame["has_precursor"].astype(bool)
    return frame[FAILURE_COLUMNS]


def read_maintenance(engine: Engine, run_id: int) -> pd.DataFrame:
    """A run's maintenance visits and repairs with the columns and order of `SimulationRun.maintenance`."""
    with engine.connect() as conn:
        frame = labels.read(conn, kinds=("maintenance", "replacement"), ref=run_ref(run_id))
    frame = frame.drop(columns="kind").rename(columns={"activity": "kind", "mode": "found_mode"})
    frame = frame.sort_values(["ts", "machine", "kind"], kind="mergesort").reset_index(drop=True)
    return frame[MAINTENANCE_COLUMNS]
