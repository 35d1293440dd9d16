"""Service history from an ERP/CRM export (CSV): failures, replacements, maintenance visits as labels."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from fleet import csv_import, display, errors, labels, machine_types, registration
from fleet.csv_import import ColumnMap, ImportRefused, ImportReport, Reject, RejectSpool, Reread
from fleet.db import for_writing
from fleet.tables.labels import LABEL_KINDS

NAME_LIMIT = 64  # characters of a component or failure mode (the label columns' width)
# A record of something that happened is not later than now; the margin is the telemetry contract's default.
FUTURE_MARGIN = timedelta(minutes=5)


def _kind(row: dict, mapping: ColumnMap) -> str:
    value = csv_import.text(row, mapping, "kind") if mapping.kind is None else mapping.kind
    kind = mapping.kinds.get(value, value)
    if kind not in LABEL_KINDS:
        raise ValueError(
            f"kind {value!r} is not one of {', '.join(LABEL_KINDS)} (map the file's values under [kinds])"
        )
    return kind


def _parse(line: int, row: dict, mapping: ColumnMap, source: str, latest: datetime) -> dict:
    """One file row as a label (machine still as (tenant, code)); ValueError with the reason if it is bad."""
    csv_import.check_row(row)
    tenant = csv_import.tenant(row, mapping)
    machine = csv_import.text(row, mapping, "machine")
    if not tenant or not machine:
        raise ValueError("no tenant" if not tenant else "no machine")
    if problem := registration.key_problem(tenant, machine):  # not "not registered": it never can be
        raise ValueError(problem)
    component = csv_import.text(row, mapping, "component")
    mode = csv_import.text(row, mapping, "mode") or None
    for name, value in (("component", component), ("mode", mode or "")):
        if len(value) > NAME_LIMIT:
            raise ValueError(f"{name} longer than {NAME_LIMIT} characters")
    raw_ts = csv_import.text(row, mapping, "ts")
    ts = csv_import.parse_time(raw_ts, mapping)
    if ts > latest:
        raise ValueError(f"time {raw_ts!r} is in the future (a planned visit is not a record yet)")
    return {
        "key": (tenant, machine),
        "ts": ts,
        "kind": _kind(row, mapping),
        "component": component,
        "mode": mode,
        "activity": csv_import.text(row, mapping, "activity")[:NAME_LIMIT] or None,
        "source": "import",
        "ref": csv_import.text(row, mapping, "ref")[:300] or f"{source}:{line}",
    }


def _key(label: dict) -> tuple:
    return (label["key"], label["ts"], label["kind"], label["component"])


def _labels(
    path: Path,
    mapping: ColumnMap,
    required: tuple[str, ...],
    latest: datetime,
    through: Callable[[Iterator[tuple[int, dict]]], Iterator[tuple[int, dict]]],
) -> Iterator[tuple[int, dict, dict | str]]:
    """(line, row, label) of each row of the file, its rows read `through` the first or a later read
    (`csv_import.Reread`); for a bad row the reason instead of the label."""
    rows = csv_import.read_rows(path, mapping, required=required, fields=csv_import.HISTORY_FIELDS)
    for line, row in through(rows):
        try:
            yield line, row, _parse(line, row, mapping, Path(path).name, latest)
        except ValueError as exc:
            yield line, row, str(exc)


def import_history(
    *,
    engine: Engine,
    path: Path,
    mapping: ColumnMap,
    dry_run: bool = False,
    reject_file: Path | None = None,
    batch_size: int = 5000,
) -> ImportReport:
    """Import a history file as labels (source `import`), idempotent on tenant, machine, time, kind, part.

    A file with bad rows is refused whole (ImportRefused: their count, the first LISTED lines and reasons)
    unless `reject_file` is given: then the good rows are imported and the bad ones written there, in line
    order, before the commit. A dry run writes nothing. The file is read twice rather than held (a file
    changed between the reads is refused, InvalidInput), labels are written `batch_size` at a time in one
    transaction, and bad rows wait in a temporary file (RejectSpool).
    """
    required = (
        ("ts", "machine") + (() if mapping.kind else ("kind",)) + (() if mapping.tenant else ("tenant",))
    )
    if mapping.kind is not None and mapping.kinds.get(mapping.kind, mapping.kind) not in LABEL_KINDS:
        raise errors.InvalidInput(f"--kind {mapping.kind!r} is not one of {', '.join(LABEL_KINDS)}")
    if reject_file is not None:
        csv_import.check_reject_file(reject_file, path)
    report = ImportReport()
    latest = datetime.now(UTC) + FUTURE_MARGIN
    machines: set[tuple[str, str]] = set()
    hashes = array("q")  # of each label's key: 8 bytes a label, not the key, to find the ones given twice
    read = Reread(path)  # what the first read found holds for the file it read: the second checks it
    for _, _, p in _labels(path, mapping, required, latest, read.first):
        report.rows += 1
        if isinstance(p, dict):
            machines.add(p["key"])
            hashes.append(hash(_key(p)))
    twice, hashes = csv_import.repeated(hashes), array("q")
    # Looks the machines up, then writes: on SQLite the transaction holds the write lock from BEGIN.
    with (
        closing(RejectSpool()) if reject_file is not None and not dry_run else nullcontext() as spool,
        (engine if dry_run else for_writing(engine)).begin() as conn,
    ):
        ids = registration.lookup_machines(conn, machines)
        types = machine_types.declared_for(conn, [machine_id for _, machine_id in ids.values()])
        unchecked: Counter[str] = Counter()
        good: list[dict] = []
        first_line: dict[tuple, int] = {}  # of the keys whose hash stands twice only
        new = existing = 0
        for line, row, p in _labels(path, mapping, required, latest, read.again):  # rows are not held
            reason = p if isinstance(p, str) else _problem(p, ids, types, unchecked, first_line)
            if reason is not None:
                report.add_reject(Reject(line, reason, row), spool)  # in line order
                continue
            key = _key(p)
            if hash(key) in twice:
                first_line[key] = line
            customer_id, machine_id = ids[p.pop("key")]
            # Written in batches: a refusal below rolls them back with the transaction. A dry run counts.
            good.append(p | {"customer_id": customer_id, "machine_id": machine_id})
            if len(good) >= batch_size:
                new, existing, good = (*_flush(conn, good, dry_run, (new, existing)), [])
        report.notes += [
            f"note: machine type {name!r} ({display.count(n, 'row')}) is not defined yet: its components and "
            "failure modes are not checked"
            for name, n in sorted(unchecked.items())
        ]
        if report.rejected and reject_file is None:
            raise ImportRefused(path, report)
        report.new, report.existing = _flush(conn, good, dry_run, (new, existing))
        if spool is not None and report.rejected:
            # Once the labels are written, before the commit: no silent half-import; a write refused
            # before this point leaves the reject file as it was.
            spool.write(reject_file, whole=True)
        report.written = not dry_run
    return report


def _problem(
    label: dict, ids: dict, types: dict, unchecked: Counter[str], first_line: dict[tuple, int]
) -> str | None:
    """Why a label read from the file is not stored (an unregistered machine, a part its type does not
    declare, a key given before), or None; a label of a type not defined is counted in `unchecked`."""
    if label["key"] not in ids:
        tenant, code = label["key"]
        return f"machine {tenant}/{code} is not registered (servicecast machines import)"
    type_name, declared = types[ids[label["key"]][1]]
    if declared is None:
        unchecked[type_name] += 1
    elif reason := declared.problem(type_name, component=label["component"], mode=label["mode"]):
        return reason
    if (key := _key(label)) in first_line:
        return f"same machine, time, kind and component as line {first_line[key]}"
    return None


def _flush(conn, good: list[dict], dry_run: bool, counts: tuple[int, int]) -> tuple[int, int]:
    """(new, stored already) counts with a batch of labels, which a dry run only looks up."""
    if dry_run:
        keys = [(p["machine_id"], p["ts"], p["kind"], p["component"]) for p in good]
        found = len(labels.stored_keys(conn, keys))
        return counts[0] + len(good) - found, counts[1] + found
    added = labels.write(conn, good)
    return counts[0] + added, counts[1] + len(good) - added
