"""Machines from an ERP/CRM export (CSV): model (machine type), commissioning date, through registration."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import closing, nullcontext
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine

from fleet import csv_import, errors, machine_staging, machine_types, registration, type_checks
from fleet.csv_import import ColumnMap, ImportRefused, ImportReport, Reject, RejectSpool, Reread
from fleet.db import WRITE_LOCK_OPTION
from fleet.tables import Customer, DataUseGrant, Machine, Site

_DAYS_PER_YEAR = 365.25
BATCH = 5000  # machines held at once: staged together
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
    if problem := registration.key_problem(tenant, machine):  # the words of every registration's refusal
        raise ValueError(problem)
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
    there in line order, before the registration commits. A dry run writes nothing. The file is read twice
    rather than held: for its customers and sites, then for its machines, staged BATCH at a time in a
    temporary table (machine_staging: no lock on the store while the file is read), bad rows waiting in a
    temporary file (RejectSpool); a file to refuse is refused before anything is written. Then one write
    transaction registers the customers, sites and every staged machine: all of the file's good rows or none.
    """
    registration.check_purposes(purposes)  # a dry run refuses what the import would
    if mapping.age_at:
        try:
            date.fromisoformat(mapping.age_at)
        except ValueError:
            raise errors.InvalidInput(f"age_at {mapping.age_at!r} is not a date") from None
    if reject_file is not None:
        csv_import.check_reject_file(reject_file, path)
    first_read = ImportReport()  # of the rows the first read finds bad
    owners, twice, read = _survey(path, mapping, first_read)
    registration.site_zones(owners)  # two zones for one site refuse the file, a dry run too
    if reject_file is None and first_read.rejected and not twice:  # no machine given again: all known
        raise ImportRefused(path, first_read)
    if reject_file is None and twice:
        _refuse_bad_rows(path, mapping, twice, read)  # before anything is written
    report = ImportReport()
    types: Counter[str] = Counter()
    with (
        closing(RejectSpool()) if reject_file is not None and not dry_run else nullcontext() as spool,
        engine.connect() as conn,
        machine_staging.staged(conn),
    ):
        batch: list[dict] = []
        for line, row, machine in _machines(path, mapping, twice, read):
            report.rows += 1
            if isinstance(machine, str):
                report.add_reject(Reject(line, machine, row), spool)  # in line order
                continue
            batch.append(machine)
            types.update([machine["machine_type"]] if machine.get("machine_type") else [])
            if len(batch) == BATCH:
                machine_staging.stage(conn, batch)
                batch = []
        machine_staging.stage(conn, batch)
        conn.commit()  # the staging table only: the store is not locked yet
        if report.rejected and reject_file is None:  # the file changed since
            raise ImportRefused(path, report)
        if not dry_run:
            conn.execution_options(**{WRITE_LOCK_OPTION: True})  # SQLite's write lock from BEGIN
        with conn.begin():
            report.existing = machine_staging.existing(conn)
            if not dry_run:
                registration.registrar(
                    conn,
                    owners,
                    purposes={owner["tenant"]: tuple(purposes) for owner in owners},
                    granted_by=f"import:{Path(path).name}"[: DataUseGrant.granted_by.type.length],
                )
                machine_staging.register(conn)
            report.notes += type_notes(conn, types)
            if spool is not None and report.rejected:
                # Once the machines are written, before the commit: no silent half-import; a write refused
                # before this point leaves the reject file as it was.
                spool.write(reject_file, whole=True)
    report.new = report.rows - report.rejected - report.existing
    report.written = not dry_run
    return report


def _refuse_bad_rows(path: Path, mapping: ColumnMap, twice: set[int], read: Reread) -> None:
    """ImportRefused if the file has a bad row or a machine given again (the first LISTED by line)."""
    report = ImportReport()
    for line, row, machine in _machines(path, mapping, twice, read):
        report.rows += 1
        if isinstance(machine, str):
            report.add_reject(Reject(line, machine, row), None)
    if report.rejected:
        raise ImportRefused(path, report)


def _survey(path: Path, mapping: ColumnMap, first_read: ImportReport) -> tuple[list[dict], set[int], Reread]:
    """What the file's good rows share rather than each machine: their customers and sites (the owners that
    `registration.registrar` takes), the hashes of the (tenant, machine) keys that stand twice, and the read
    (`_machines` meets the same rows); each row counted in `first_read`, each bad one rejected there."""
    owners: dict[tuple, dict] = {}
    hashes = array("q")
    read = Reread(path)
    for line, row in read.first(_rows(path, mapping)):
        first_read.rows += 1
        try:
            machine = _parse(row, mapping)
        except ValueError as exc:
            first_read.add_reject(Reject(line, str(exc), row), None)
            continue
        owner = {k: machine[k] for k in ("tenant", "customer_name", "site", "site_timezone") if k in machine}
        key = tuple(owner.items())
        owners[key] = owners.pop(key, owner)  # moved to the end: the last customer_name given wins
        hashes.append(hash((machine["tenant"], machine["machine"])))
    return list(owners.values()), csv_import.repeated(hashes), read


def _machines(
    path: Path, mapping: ColumnMap, twice: set[int], read: Reread
) -> Iterator[tuple[int, dict, dict | str]]:
    """(line, row, machine) of each row of the file; for a bad row, or a machine given again, the reason.
    InvalidInput when a row is not the one the first read found (`_survey`): it could name a site not added,
    or a machine given twice as new."""
    first_line: dict[tuple[str, str], int] = {}  # of the keys whose hash stands twice only
    for line, row in read.again(_rows(path, mapping)):
        try:
            machine = _parse(row, mapping)
        except ValueError as exc:
            yield line, row, str(exc)
            continue
        key = (machine["tenant"], machine["machine"])
        if key in first_line:
            yield line, row, f"same tenant and machine as line {first_line[key]}"
            continue
        if hash(key) in twice:
            first_line[key] = line
        yield line, row, machine


def _rows(path: Path, mapping: ColumnMap) -> Iterator[tuple[int, dict]]:
    required = ("machine",) + (() if mapping.tenant else ("tenant",))
    return csv_import.read_rows(path, mapping, required=required, fields=csv_import.MACHINE_FIELDS)


def undefined_types(conn: Connection, machines: list[dict]) -> list[str]:
    """A note per machine type of `machines` that has no definition yet (a typo, or types not applied)."""
    return type_notes(conn, Counter(m["machine_type"] for m in machines if m.get("machine_type")))


def type_notes(conn: Connection, counts: Counter[str]) -> list[str]:
    """A note per machine type counted in `counts` (machines of it) that has no definition yet."""
    known = machine_types.defined(conn, list(counts))
    return [
        f"note: machine type {name!r}{f' ({n} machines)' if n > 1 else ''} is not defined yet: "
        "servicecast types apply FILE gives its sensors' names, units and limits"
        for name, n in sorted(counts.items())
        if name not in known
    ]
