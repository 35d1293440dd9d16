"""Register a simulated fleet through the fleet's one registration path, with the simulation's grants."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pandas as pd
from sqlalchemy import Engine

from fleet import registration
from fleet.registration import MachineIds


def simulated_purposes(tenants: Collection[str]) -> dict[str, tuple[str, ...]]:
    """Every simulated customer grants `product_improvement` but the last of several, so its effect shows."""
    ordered = sorted(tenants)
    pooled = ordered[:-1] if len(ordered) > 1 else ordered
    return {t: ("service", "product_improvement") if t in pooled else ("service",) for t in ordered}


def register_machines(
    *, engine: Engine, machines: pd.DataFrame, purposes: Mapping[str, Collection[str]] | None = None
) -> MachineIds:
    """Add the customers, sites and machines not registered yet; ids by (tenant, code).

    `machines` has columns tenant and machine, and optionally machine_type, serial, installed,
    contract_tier and site (as `SimulationRun.machines`). A new customer grants `purposes[tenant]`
    (`service` always; default `simulated_purposes`). Existing rows are left as they are.
    """
    purposes = simulated_purposes(set(machines["tenant"])) if purposes is None else purposes
    return registration.register_machines(
        engine=engine, machines=machines.to_dict("records"), purposes=purposes, granted_by="simulator"
    )
