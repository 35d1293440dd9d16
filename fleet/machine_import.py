"""Machines from an ERP/CRM export (CSV): model (machine type), commissioning date, through registration."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from contextlib import closing, nullcontext
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import Connection, Engine

from fleet import contract, csv_import, errors, machine_types, registration, type_checks
from fleet.csv_import import ColumnMap, ImportRefused, ImportReport, Reject, RejectSpool
from fleet.tables import Customer, DataUseGrant, Machine, Site

_DAYS_PER_YEAR = 365.25
# Characters each optional field may have: 64, or less where the column is narrower (PostgreSQL refuses more).
_WIDTHS = {
    name: min(64, column.type.length)
    for name, column in {
        "machine_type": Machine.machine_type,
        "serial": Machine.serial,
        "site": Site.name,
        "customer_name": Customer.name,
        "contract_tier": Machine.contract_tier,
    }.items()
}


def _installed(row: dict, mapping: ColumnMap) -> date | None:
    """The commissioning date: the `installed` column, else `age_at` minus the `age` column (years)."""
    installed = csv_import.text(row, mapping, "installed")
    if installed:
        try:
            return datetime.fromisoformat(installed).date()  # a date, or a date and time
        except ValueError:
            raise ValueError(f"installed {installed!r} is not a date (YYYY-MM-DD)") from None
    age = csv_import.text(row, mapping, "age")
    if not age:
        return None
    try:
        if "_" in age:  # Python reads 1_5 as 15: no file means that
            raise ValueError
        years = float(age)
    except ValueError:
        raise ValueError(f"age {age!r} is not a number of years") from None
    if not 0 <= years <= 200:
        raise ValueError(f"age {age!r} is not between 0 and 200 years")
    at = date.fromisoformat(mapping.age_at) if mapping.age_at else date.today()
    return at - timedelta(days=round(years * _DAYS_PER_YEAR))


def _parse(row: dict, mapping: ColumnMap) -> dict:
    csv_import.check_row(row)
    tenant = csv_import.tenant(row, mapping)
    machine = csv_import.text(row, mapping, "machine")
    if not contract.TENANT_PATTERN.fullmatch(tenant):
        raise ValueError(f"tenant {tenant!r} must match {contract.TENANT_PATTERN.pattern}")
    if not contract.MACHINE_PATTERN.fullmatch(machine):
        raise ValueError(f"machine {machine!r} must match {contract.MACHINE_PATTERN.pattern}")
    out = {"tenant": tenant, "machine": machine, "installed": _installed(row, mapping)}
    for name, limit in _WIDTHS.items():
        value = csv_import.text(row, mapping, name)
        if len(value) > limit:
            raise ValueError(f"{name} longer than {limit} characters")
        if value:
            out[name] = value
    zone = csv_import.text(row, mapping, "site_timezone")
    if zone:
        try:
            registration.site_zones([out | {"site_timezone": zone}])
        except errors.InvalidInput as exc:
            raise ValueError(str(exc).removeprefix(f"machine {machine!r}: ")) from None
        out["site_timezone"] = zone
    if "machine_type" not in out and mapping.machine_type:
        out["machine_type"] = mapping.machine_type
    if "machine_type" in out and (problem := type_checks.name_problem(out["machine_type"])):
        raise ValueError(f"machine_type {problem}: no types file can define it")
    return out


def import_machines(
    *,
    engine: Engine,
    path: Path,
    mapping: ColumnMap,
    purposes: Collection[str] = (),
    dry_run: bool = False,
    reject_file: Path | None = None,
) -> ImportReport:
    """Register the file's machines (idempotent on tenant and machine); customers it creates grant `purposes`.

    Bad rows refuse the whole file (ImportRefused: their count, the first LISTED lines and reasons) unless
    `reject_file` is given, as for history imports: then the good rows are registered and the bad ones written
    there in line order, before the registration commits. A dry run writes nothing. Bad rows wait in a
    temporary file (RejectSpool), not in memory.
    """
    registration.check_purposes(purposes)  # a dry run refuses what the import would
    if mapping.age_at:
        try:
            date.fromisoformat(mapping.age_at)
        except ValueError:
            raise errors.InvalidInput(f"age_at {mapping.age_at!r} is not a date") from None
    if reject_file is not None:
        csv_import.check_reject_file(reject_file, path)
    report = ImportReport()
    with closing(RejectSpool()) if reject_file is not None and not dry_run else nullcontext() as spool:
        good, first_line = _read(path, mapping, report, spool)
        if report.rejected and reject_file is None:
            raise ImportRefused(path, report)
        with engine.connect() as conn:
            report.existing = len(registration.lookup_machines(conn, list(first_line)))
            report.notes += undefined_types(conn, good)
        report.new = len(good) - report.existing
        if dry_run:
            return report
        tenants = {row["tenant"] for row in good}
        registration.register_machines(
            engine=engine,
            machines=good,
            purposes={t: tuple(purposes) for t in tenants},
            granted_by=f"import:{Path(path).name}"[: DataUseGrant.granted_by.type.length],
            # Once the machines are written, before the commit: no silent half-import; a write refused
            # before this point leaves the reject file as it was.
            before_commit=partial(spool.write, reject_file, whole=True) if report.rejected else None,
        )
    report.written = True
    return report


def _read(
    path: Path, mapping: ColumnMap, report: ImportReport, spool: RejectSpool | None
) -> tuple[list[dict], dict[tuple[str, str], int]]:
    """The file's good machines and the line of each (tenant, machine); each row counted in `report`, each
    bad one rejected there (and to `spool`) in line order."""
    good, first_line = [], {}
    required = ("machine",) + (() if mapping.tenant else ("tenant",))
    for line, row in csv_import.read_rows(path, mapping, required=required, fields=csv_import.MACHINE_FIELDS):
        report.rows += 1
        try:
            parsed = _parse(row, mapping)
        except ValueError as exc:
            report.add_reject(Reject(line, str(exc), row), spool)
            continue
        key = (parsed["tenant"], parsed["machine"])
        if key in first_line:
            reason = f"same tenant and machine as line {first_line[key]}"
            report.add_reject(Reject(line, reason, row), spool)
            continue
        first_line[key] = line
        good.append(parsed)
    return good, first_line


def undefined_types(conn: Connection, machines: list[dict]) -> list[str]:
    """A note per machine type of `machines` that has no definition yet (a typo, or types not applied)."""
    counts = Counter(m["machine_type"] for m in machines if m.get("machine_type"))
    known = machine_types.defined(conn, list(counts))
    return [
        f"note: machine type {name!r}{f' ({n} machines)' if n > 1 else ''} is not defined yet: "
        "servicecast types apply FILE gives its sensors' names, units and limits"
        for name, n in sorted(counts.items())
        if name not in known
    ]
