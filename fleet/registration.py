"""Registration of customers, sites and machines in bulk, idempotently: every way of registering calls it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import date, datetime

from sqlalchemy import Connection, Engine, or_, select, tuple_, update

from fleet import audit, contract, csv_import, dialect, display, errors
from fleet.tables import Customer, DataUseGrant, Machine, Site, WorkflowEvent
from fleet.tables.register import PURPOSES

MachineKey = tuple[str, str]
MachineIds = dict[MachineKey, tuple[int, int]]
_CHUNK = 5000  # rows per statement, below SQLite's bound-parameter limit


def check_key(tenant: str, code: str | None = None) -> None:
    """Refuse (InvalidInput) a tenant or machine id (None: a tenant's alone) that could not appear in an MQTT
    topic."""
    if problem := key_problem(tenant, code):
        raise errors.InvalidInput(problem)


def key_problem(tenant: str, code: str | None = None) -> str | None:
    """Why a tenant or machine id (None: a tenant's alone) could not appear in an MQTT topic, or None:
    `check_key`'s words, which an import gives a bad row."""
    if not contract.TENANT_PATTERN.fullmatch(tenant):
        return f"tenant id {tenant!r} must match {contract.TENANT_PATTERN.pattern}"
    if code is not None and not contract.MACHINE_PATTERN.fullmatch(code):
        return f"machine id {code!r} must match {contract.MACHINE_PATTERN.pattern}"
    return None


def check_purposes(purposes: Iterable[str]) -> None:
    """InvalidInput naming a purpose no customer can grant."""
    unknown = sorted(set(purposes) - set(PURPOSES))
    if unknown:
        raise errors.InvalidInput(f"purpose must be one of {', '.join(PURPOSES)}, not {unknown[0]!r}")


def register_machines(
    *,
    engine: Engine,
    machines: Iterable[Mapping[str, object]],
    purposes: Mapping[str, Collection[str]] | None = None,
    granted_by: str = display.SYSTEM_ACTOR,
    first_sight: bool = False,
) -> MachineIds:
    """Add the customers, sites and machines not registered yet, in one transaction; ids by (tenant, machine).

    Each of `machines` has `tenant` and `machine`, and optionally machine_type, serial, installed,
    contract_tier, site, site_timezone (the site's IANA time zone) and customer_name (default: the tenant
    id). A new customer grants `service` and `purposes[tenant]`. `first_sight` (auto-registration) marks
    what it adds as auto-registered and its grants as assumed: nobody declared them. Rows registered
    already are left as they are, grants too; a site_timezone given sets its site's zone.
    """
    records = list(machines)
    for row in records:
        check_key(str(row["tenant"]), str(row["machine"]))
    with engine.begin() as conn:
        add = registrar(conn, records, purposes=purposes, granted_by=granted_by, first_sight=first_sight)
        add(records)
        return lookup_machines(conn, [(str(r["tenant"]), str(r["machine"])) for r in records])


def registrar(
    conn: Connection,
    owners: list[Mapping[str, object]],
    *,
    purposes: Mapping[str, Collection[str]] | None = None,
    granted_by: str = display.SYSTEM_ACTOR,
    first_sight: bool = False,
) -> Callable[[list[Mapping[str, object]]], None]:
    """Add on `conn` the customers and sites that `owners` name (rows as `register_machines` takes, of which
    tenant, customer_name, site and site_timezone are read) and return what adds their machines, a batch at
    a time, in the same transaction: a file's machines need not be held at once."""
    zones = site_zones(owners)
    purposes = purposes or {}
    check_purposes(p for wanted in purposes.values() for p in wanted)
    tenants = sorted({str(row["tenant"]) for row in owners})
    names = {str(r["tenant"]): str(r["customer_name"]) for r in owners if r.get("customer_name")}
    new = _customers(conn, tenants, names, first_sight)
    customer_ids = _customer_ids(conn, tenants)
    grants = [
        {"customer_id": customer_ids[t], "purpose": p, "granted_by": granted_by, "assumed": first_sight}
        for t in sorted(new)
        for p in PURPOSES
        if p == "service" or p in purposes.get(t, ())
    ]
    if grants:
        conn.execute(DataUseGrant.__table__.insert(), grants)
        conn.execute(
            WorkflowEvent.__table__.insert(),
            _audit_rows(new, customer_ids, grants, granted_by, first_sight),
        )
    site_ids = _sites(conn, owners, customer_ids, zones)

    def add(machines: list[Mapping[str, object]]) -> None:
        rows = [_machine(row, customer_ids, site_ids, first_sight) for row in machines]
        for i in range(0, len(rows), _CHUNK):
            _insert_missing(conn, Machine, rows[i : i + _CHUNK], ["customer_id", "code"])

    return add


def _audit_rows(
    new: set[str], customer_ids: dict[str, int], grants: list[dict], granted_by: str, first_sight: bool
) -> list[dict]:
    """A `customer_added` audit row per new customer, with the purposes it was registered with."""
    by, data = audit.Operator(granted_by), {"assumed": True} if first_sight else {}
    purposes: dict[int, list[str]] = {}
    for grant in grants:
        purposes.setdefault(grant["customer_id"], []).append(grant["purpose"])
    return [
        audit.entry("customer", cid, "customer_added", by, data, after={"purposes": sorted(purposes[cid])})
        for cid in (customer_ids[t] for t in sorted(new))
    ]


def _insert_missing(conn: Connection, table: type, rows: list[dict], key: list[str]) -> None:
    if rows:
        conn.execute(dialect.insert(conn, table.__table__).on_conflict_do_nothing(index_elements=key), rows)


def _customers(conn: Connection, tenants: list[str], names: dict[str, str], first_sight: bool) -> set[str]:
    """Insert the customers not registered yet; returns their tenant ids."""
    if not tenants:
        return set()
    rows = [{"tenant": t, "name": names.get(t, t), "auto_registered": first_sight} for t in tenants]
    table = Customer.__table__
    stmt = dialect.insert(conn, table).on_conflict_do_nothing(index_elements=["tenant"])
    return set(conn.scalars(stmt.returning(table.c.tenant), rows))


def _customer_ids(conn: Connection, tenants: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i in range(0, len(tenants), _CHUNK):
        query = select(Customer.tenant, Customer.id).where(Customer.tenant.in_(tenants[i : i + _CHUNK]))
        found.update({tenant: cid for tenant, cid in conn.execute(query)})
    return found


def site_zones(records: list[Mapping]) -> dict[tuple[str, str], str]:
    """The time zone given per (tenant, site); InvalidInput for an unknown zone, one without a site or
    two different zones for one site."""
    zones: dict[tuple[str, str], str] = {}
    for r in records:
        name = str(r.get("site_timezone") or "")
        if not name:
            continue
        if not r.get("site"):
            raise errors.InvalidInput(f"machine {r['machine']!r}: site_timezone {name!r} needs a site")
        csv_import.zone(name)
        key = (str(r["tenant"]), str(r["site"]))
        if zones.setdefault(key, name) != name:
            raise errors.InvalidInput(
                f"site {key[1]!r} of {key[0]!r} given two time zones: {zones[key]}, {name}"
            )
    return zones


def _sites(
    conn: Connection,
    records: list[Mapping],
    customer_ids: dict[str, int],
    zones: Mapping[tuple[str, str], str],
) -> dict[tuple[int, str], int]:
    pairs = sorted({(str(r["tenant"]), str(r["site"])) for r in records if r.get("site")})
    if not pairs:
        return {}
    rows = [{"customer_id": customer_ids[t], "name": s, "timezone": zones.get((t, s))} for t, s in pairs]
    _insert_missing(conn, Site, rows, ["customer_id", "name"])
    for (t, s), name in zones.items():
        conn.execute(
            update(Site)
            .where(Site.customer_id == customer_ids[t], Site.name == s)
            .where(or_(Site.timezone.is_(None), Site.timezone != name))
            .values(timezone=name)
        )
    query = select(Site.customer_id, Site.name, Site.id).where(
        Site.customer_id.in_(sorted({customer_ids[t] for t, _ in pairs}))
    )
    return {(c, name): sid for c, name, sid in conn.execute(query)}


def _machine(
    row: Mapping, customer_ids: dict[str, int], site_ids: dict[tuple[int, str], int], first_sight: bool
) -> dict:
    customer_id = customer_ids[str(row["tenant"])]
    site = row.get("site")
    return {
        "customer_id": customer_id,
        "site_id": site_ids.get((customer_id, str(site))) if site else None,
        "code": str(row["machine"]),
        **machine_details(row),
        "auto_registered": first_sight,
    }


def machine_details(row: Mapping) -> dict:
    """A machine's own fields as registered, the defaults where the row leaves them out."""
    return {
        "machine_type": row.get("machine_type") or "unknown",
        "serial": row.get("serial"),
        "installed": _day(row.get("installed")),
        "contract_tier": row.get("contract_tier") or "basic",
    }


def _day(value: object) -> date | None:
    if value is None or value != value:  # NaT and NaN are not equal to themselves
        return None
    return value.date() if isinstance(value, datetime) else value  # type: ignore[return-value]


def lookup_machines(conn: Connection, keys: Iterable[MachineKey]) -> MachineIds:
    """Database ids `(customer_id, machine_id)` of the registered machines among `keys`."""
    keys = sorted(set(keys))
    ids: MachineIds = {}
    for i in range(0, len(keys), _CHUNK):
        query = (
            select(Customer.tenant, Machine.code, Customer.id, Machine.id)
            .join(Customer, Machine.customer_id == Customer.id)
            .where(tuple_(Customer.tenant, Machine.code).in_(keys[i : i + _CHUNK]))
        )
        ids.update({(t, c): (cid, mid) for t, c, cid, mid in conn.execute(query)})
    return ids
