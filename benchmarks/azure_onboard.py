"""Onboard the Azure predictive-maintenance files into a store through the product's import paths only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from fleet import csv_import, errors, history_import, machine_import, machine_types
from ingest import telemetry_import

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "azure_pdm"
TYPES = EXAMPLE / "types.yaml"
MAPPING = EXAMPLE / "mapping.toml"
FILES = {
    "machines": "PdM_machines.csv.gz",
    "telemetry": "PdM_telemetry.csv.gz",
    "errors": "PdM_errors.csv.gz",
    "maint": "PdM_maint.csv.gz",
    "failures": "PdM_failures.csv.gz",
}


class CannotOnboard(errors.InvalidInput):
    """The data directory lacks a file, or a file has rows the product's imports refuse."""


@dataclass(frozen=True)
class Onboarded:
    """What each import stored."""

    machines: int
    readings: int
    events: int
    failures: int
    maintenance: int


def files(data: Path) -> dict[str, Path]:
    """The five files of DIR (plain or gzip CSV), or CannotOnboard naming the missing ones."""
    found, missing = {}, []
    for key, name in FILES.items():
        plain = Path(data) / name.removesuffix(".gz")
        path = Path(data) / name if (Path(data) / name).exists() else plain
        (found.__setitem__(key, path) if path.exists() else missing.append(name))
    if missing:
        raise CannotOnboard(
            f"{data}: missing {', '.join(missing)} (an Azure PdM folder holds {len(FILES)} files)"
        )
    return found


def onboard(engine: Engine, data: Path) -> Onboarded:
    """Types file, machines import, telemetry and error-event import, failure and maintenance history."""
    paths = files(data)
    mapping = csv_import.load_map(MAPPING)
    machine_types.apply_file(engine=engine, path=TYPES)
    try:
        machines = machine_import.import_machines(
            engine=engine, path=paths["machines"], mapping=mapping, purposes=["product_improvement"]
        )
        readings = telemetry_import.import_file(
            engine=engine,
            path=paths["telemetry"],
            mapping=mapping.merged(kind="telemetry"),
            batch_size=20_000,
        )
        events = telemetry_import.import_file(
            engine=engine, path=paths["errors"], mapping=mapping.merged(kind="events")
        )
        fails = history_import.import_history(
            engine=engine,
            path=paths["failures"],
            mapping=mapping.merged(kind="failure", columns={"component": "failure"}),
        )
        maint = history_import.import_history(
            engine=engine,
            path=paths["maint"],
            mapping=mapping.merged(kind="maintenance", columns={"component": "comp"}),
        )
    except csv_import.ImportRefused as exc:
        raise CannotOnboard(str(exc)) from None
    for name, report in (("telemetry", readings), ("errors", events)):
        if report.rejects:
            first = report.rejects[0]
            raise CannotOnboard(
                f"{paths[name]}: {len(report.rejects)} rows refused, e.g. line {first.line}: {first.reason}"
            )
    return Onboarded(
        machines=machines.rows,
        readings=readings.new + readings.existing,
        events=events.new + events.existing,
        failures=fails.rows,
        maintenance=maint.rows,
    )
