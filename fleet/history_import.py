"""Service history from an ERP/CRM export (CSV): failures, replacements, maintenance visits as labels."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from fleet import csv_import, display, errors, labels, machine_types, registration
from fleet.csv_import import ColumnMap, ImportRefused, ImportReport, Reject
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


def _twice(hashes: array) -> set[int]:
    """The hashes that stand more than once in `hashes`: the keys that may be given twice (or collide)."""
    ordered = np.sort(np.frombuffer(hashes, dtype=np.int64))
    return set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())


def _key(label: dict) -> tuple:
    return (label["key"], label["ts"], label["kind"], label["component"])


def _labels(
    path: Path, mapping: ColumnMap, required: tuple[str, ...], latest: datetime, report: ImportReport | None
) -> Iterator[tuple[int, dict, dict]]:
    """(line, row, label) of each row that reads as a label; given `report`, each row is counted there and a
    bad one rejected (the first of the import's two reads of the file)."""
    for line, row in csv_import.read_rows(path, mapping, required=required, fields=csv_import.HISTORY_FIELDS):
        if report is not None:
            report.rows += 1
        try:
            label = _parse(line, row, mapping, Path(path).name, latest)
        except ValueError as exc:
            if report is not None:
                report.rejects.append(Reject(line, str(exc), row))
            continue
        yield line, row, label


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

    A file with bad rows is refused whole (ImportRefused lists every line and reason) unless `reject_file`
    is given: then the good rows are imported and the bad ones written there. A dry run writes nothing.
    The file is read twice rather than held, and written `batch_size` labels at a time in one transaction.
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
    for _, _, p in _labels(path, mapping, required, latest, report):
        machines.add(p["key"])
        hashes.append(hash(_key(p)))
    twice, hashes = _twice(hashes), array("q")
    # Looks the machines up, then writes: on SQLite the transaction holds the write lock from BEGIN.
    with (engine if dry_run else for_writing(engine)).begin() as conn:
        ids = registration.lookup_machines(conn, machines)
        types = machine_types.declared_for(conn, [machine_id for _, machine_id in ids.values()])
        unchecked: Counter[str] = Counter()
        good: list[dict] = []
        first_line: dict[tuple, int] = {}  # of the keys whose hash stands twice only
        new = existing = 0
        for line, row, p in _labels(path, mapping, required, latest, None):  # read again: rows are not held
            if p["key"] not in ids:
                tenant, code = p["key"]
                reason = f"machine {tenant}/{code} is not registered (servicecast machines import)"
                report.rejects.append(Reject(line, reason, row))
                continue
            key = _key(p)
            customer_id, machine_id = ids[p.pop("key")]
            type_name, declared = types[machine_id]
            if declared is None:
                unchecked[type_name] += 1
            elif reason := declared.problem(type_name, component=p["component"], mode=p["mode"]):
                report.rejects.append(Reject(line, reason, row))
                continue
            if key in first_line:
                reason = f"same machine, time, kind and component as line {first_line[key]}"
                report.rejects.append(Reject(line, reason, row))
                continue
            if hash(key) in twice:
                first_line[key] = line
            # Written in batches: a refusal below rolls them back with the transaction. A dry run counts.
            good.append(p | {"customer_id": customer_id, "machine_id": machine_id})
            if len(good) >= batch_size:
                new, existing, good = (*_flush(conn, good, dry_run, (new, existing)), [])
        report.rejects.sort(key=lambda r: r.line)
        report.notes += [
            f"note: machine type {name!r} ({display.count(n, 'row')}) is not defined yet: its components and "
            "failure modes are not checked"
            for name, n in sorted(unchecked.items())
        ]
        if report.rejects and reject_file is None:
            raise ImportRefused(path, report)
        if report.rejects and not dry_run:
            csv_import.write_rejects(reject_file, report.rejects)  # before the commit: no silent half-import
        report.new, report.existing = _flush(conn, good, dry_run, (new, existing))
        report.written = not dry_run
    return report


def _flush(conn, good: list[dict], dry_run: bool, counts: tuple[int, int]) -> tuple[int, int]:
    """(new, stored already) counts with a batch of labels, which a dry run only looks up."""
    if dry_run:
        keys = [(p["machine_id"], p["ts"], p["kind"], p["component"]) for p in good]
        found = len(labels.stored_keys(conn, keys))
        return counts[0] + len(good) - found, counts[1] + found
    added = labels.write(conn, good)
    return counts[0] + added, counts[1] + len(good) - added
