"""Register a simulated fleet's customers, sites and machines in bulk, idempotently."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pandas as pd
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from fleet import registry
from fleet.tables import Customer, DataUseGrant, Machine, Site, utcnow

MachineIds = dict[tuple[str, str], tuple[int, int]]
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _insert_missing(conn: Connection, table, rows: list[dict], key: list[str]) -> None:  # noqa: ANN001
    if rows:
        conn.execute(_INSERTS[conn.dialect.name](table).on_conflict_do_nothing(index_elements=key), rows)


def simulated_purposes(tenants: Collection[str]) -> dict[str, tuple[str, ...]]:
    """Every simulated customer grants `product_improvement` but the last of several, so its effect shows."""
    ordered = sorted(tenants)
    pooled = ordered[:-1] if len(ordered) > 1 else ordered
    return {t: ("service", "product_improvement") if t in pooled else ("service",) for t in ordered}


def register_machines(
    engine: Engine,
    machines: pd.DataFrame,
    *,
    purposes: Mapping[str, Collection[str]] | None = None,
    granted_by: str = "simulator",
) -> MachineIds:
    """Add the customers, sites and machines not registered yet; ids by (tenant, code).

    `machines` has columns tenant and machine, and optionally machine_type, serial, installed,
    contract_tier and site (as `SimulationRun.machines`). A new customer grants `purposes[tenant]`
    (`service` always; default `simulated_purposes`). Existing rows are left as they are.
    """
    tenants = sorted(set(machines["tenant"]))
    purposes = simulated_purposes(tenants) if purposes is None else purposes
    with engine.begin() as conn:
        known = registry.known_tenants(conn, tenants)
        new = [t for t in tenants if t not in known]
        _insert_missing(conn, Customer.__table__, [_customer(t) for t in new], ["tenant"])
        query = select(Customer.tenant, Customer.id).where(Customer.tenant.in_(tenants))
        customer_ids = {tenant: cid for tenant, cid in conn.execute(query)}
        grants = [
            {"customer_id": customer_ids[t], "purpose": p, "granted_by": granted_by}
            for t in new
            for p in registry.PURPOSES
            if p == "service" or p in purposes.get(t, ())
        ]
        if grants:
            conn.execute(DataUseGrant.__table__.insert(), grants)
        site_ids = _sites(conn, machines, customer_ids)
        rows = [_machine(row, customer_ids, site_ids) for row in machines.to_dict("records")]
        for i in range(0, len(rows), 5000):
            _insert_missing(conn, Machine.__table__, rows[i : i + 5000], ["customer_id", "code"])
        keys = list(zip(machines["tenant"], machines["machine"], strict=True))
        ids: MachineIds = {}
        for i in range(0, len(keys), 5000):
            ids.update(registry.lookup_machines(conn, keys[i : i + 5000]))
    return ids


def _customer(tenant: str) -> dict:
    return {"tenant": tenant, "name": tenant, "auto_registered": False, "created_at": utcnow()}


def _sites(
    conn: Connection, machines: pd.DataFrame, customer_ids: dict[str, int]
) -> dict[tuple[int, str], int]:
    if "site" not in machines:
        return {}
    pairs = sorted(
        {(customer_ids[t], s) for t, s in zip(machines["tenant"], machines["site"], strict=True) if s}
    )
    _insert_missing(
        conn, Site.__table__, [{"customer_id": c, "name": s} for c, s in pairs], ["customer_id", "name"]
    )
    query = select(Site.customer_id, Site.name, Site.id).where(
        Site.customer_id.in_(list(customer_ids.values()))
    )
    return {(c, name): sid for c, name, sid in conn.execute(query)}


def _machine(row: dict, customer_ids: dict[str, int], site_ids: dict[tuple[int, str], int]) -> dict:
    customer_id = customer_ids[row["tenant"]]
    installed = row.get("installed")
    return {
        "customer_id": customer_id,
        "site_id": site_ids.get((customer_id, row.get("site"))),
        "code": row["machine"],
        "machine_type": row.get("machine_type") or "unknown",
        "serial": row.get("serial"),
        "installed": None if installed is None or pd.isna(installed) else pd.Timestamp(installed).date(),
        "contract_tier": row.get("contract_tier") or "basic",
        "auto_registered": False,
        "created_at": utcnow(),
    }
