"""Machine types as data: apply a types file as new versions, and read what a type says about its sensors."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import yaml
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleet import audit, type_files
from fleet.db import for_writing, session
from fleet.errors import AlreadyExists, NotFound
from fleet.tables import Machine, MachineTypeVersion
from fleet.type_checks import TRAINING

_CHUNK = 2000  # machine ids per statement, below SQLite's bound-parameter limit


class MachineTypeNotFound(NotFound):
    """No machine type (or version of it) with that name."""

    code = "machine_type_not_found"


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """What a type says about one sensor: its words, unit, expected range and the OEM's limits."""

    name: str
    unit: str = ""
    display_name: str = ""
    low: float | None = None
    high: float | None = None
    warning: float | None = None
    alarm: float | None = None
    bad: str | None = None
    alarm_on_delay_s: float | None = None  # how long readings stay beyond a limit before it counts

    @property
    def label(self) -> str:
        """How a person reads the sensor: 'bearing temperature (°C)'."""
        words = self.display_name or self.name.replace("_", " ")
        return f"{words} ({self.unit})" if self.unit else words

    @property
    def words(self) -> str:
        """The display name alone, for sentences."""
        return self.display_name or self.name.replace("_", " ")

    def reading(self, value: float) -> str:
        """A value of this sensor as a person reads it: '8.27 mm/s'."""
        return f"{round(float(value), 2):g} {self.unit}".rstrip()

    @property
    def oem_limit(self) -> float | None:
        """The limit a trend is forecast to: the OEM's alarm limit, else its warning limit."""
        return self.alarm if self.alarm is not None else self.warning

    @classmethod
    def from_definition(cls, d: dict) -> SensorSpec:
        """The spec of one sensor entry of a stored definition."""
        low, high = d.get("range") or (None, None)
        return cls(
            name=d["name"],
            unit=d.get("unit", ""),
            display_name=d.get("display_name", ""),
            low=low,
            high=high,
            warning=d.get("warning"),
            alarm=d.get("alarm"),
            bad=d.get("bad"),
            alarm_on_delay_s=d.get("alarm_on_delay_s"),
        )


def specs_of(definition: dict) -> dict[str, SensorSpec]:
    """A definition's sensors by name, in file order."""
    return {s["name"]: SensorSpec.from_definition(s) for s in definition["sensors"]}


@dataclass(frozen=True, slots=True)
class TypeVersion:
    """One stored version of a type's definition."""

    name: str
    version: int
    definition: dict
    applied_at: datetime
    source: str | None

    @property
    def sensors(self) -> dict[str, SensorSpec]:
        """This version's sensors by name, in file order."""
        return specs_of(self.definition)


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying a file did to one type: the version it is at and whether that version is new."""

    name: str
    version: int
    changed: bool


def digest(definition: dict) -> str:
    """A stable fingerprint of a definition: the same content gives the same digest whatever its order."""
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def apply_file(*, engine: Engine, path: str | Path, by: audit.Actor | None = None) -> list[Applied]:
    """Check a types file and store each changed type as its next version (nothing at all on a problem)."""
    parsed = type_files.read(path)
    return apply_definitions(engine=engine, definitions=parsed.definitions, source=parsed.source, by=by)


def apply_definitions(
    *, engine: Engine, definitions: dict[str, dict], source: str | None, by: audit.Actor | None = None
) -> list[Applied]:
    """Store checked definitions: an unchanged type keeps its version, a changed one gets the next,
    recorded in the audit trail with who applied it."""
    try:
        return _apply(engine, definitions, source, by)
    except IntegrityError:  # another apply stored the same next version first
        raise AlreadyExists("the types were applied by someone else at the same time; apply again") from None


def _apply(engine: Engine, definitions: dict[str, dict], source: str | None, by: audit.Actor | None) -> list:
    out = []
    with session(for_writing(engine)) as sess:
        for name, definition in definitions.items():
            fingerprint = digest(definition)
            latest = _latest_row(sess, name)
            if latest is not None and latest.digest == fingerprint:
                out.append(Applied(name, latest.version, changed=False))
                continue
            row = MachineTypeVersion(
                name=name,
                version=1 if latest is None else latest.version + 1,
                digest=fingerprint,
                definition=definition,
                source=(source or "")[-255:] or None,
            )
            sess.add(row)
            sess.flush()
            data = {"name": name, "version": row.version, "source": row.source, "digest": fingerprint}
            audit.record(sess, "machine_type", row.id, "applied", by, data)
            out.append(Applied(name, row.version, changed=True))
    return out


def _latest_row(sess: Session, name: str) -> MachineTypeVersion | None:
    query = select(MachineTypeVersion).where(MachineTypeVersion.name == name)
    return sess.scalar(query.order_by(MachineTypeVersion.version.desc()).limit(1))


def _version(row: MachineTypeVersion) -> TypeVersion:
    return TypeVersion(row.name, row.version, row.definition, row.applied_at, row.source)


def get(sess: Session, name: str, version: int | None = None) -> TypeVersion:
    """A type's definition: the newest version, or the one asked for."""
    if version is None:
        row = _latest_row(sess, name)
    else:
        query = select(MachineTypeVersion).where(
            MachineTypeVersion.name == name, MachineTypeVersion.version == version
        )
        row = sess.scalar(query)
    if row is None and version is not None and (newest := _latest_row(sess, name)) is not None:
        raise MachineTypeNotFound(f"machine type {name!r} has versions 1 to {newest.version}, not {version}")
    if row is None:
        raise MachineTypeNotFound(f"no machine type {name!r}; apply a types file first")
    return _version(row)


def list_types(*, engine: Engine) -> list[TypeVersion]:
    """Every type's newest version (versions count up from 1), by name."""
    newest = (
        select(MachineTypeVersion.name, func.max(MachineTypeVersion.version).label("v"))
        .group_by(MachineTypeVersion.name)
        .subquery()
    )
    query = select(MachineTypeVersion).join(
        newest, (newest.c.name == MachineTypeVersion.name) & (newest.c.v == MachineTypeVersion.version)
    )
    with session(engine) as sess:
        return [_version(row) for row in sess.scalars(query.order_by(MachineTypeVersion.name))]


def defined(conn: Session | Connection, names: list[str]) -> set[str]:
    """Which of these type names have a stored definition."""
    query = select(MachineTypeVersion.name).where(MachineTypeVersion.name.in_(names)).distinct()
    return set(conn.execute(query).scalars())


@dataclass(frozen=True, slots=True)
class Declared:
    """The components, failure modes and codes of a type's versions, each in the order first declared.

    Any version counts: a type change never makes a name wrong that data stored before it may carry.
    """

    components: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    parts: tuple[tuple[str, str], ...] = ()  # (failure mode, its component) as the newest version says

    def component_of(self, mode: str | None) -> str | None:
        """The component a failure mode of this type belongs to (None: not a mode of the type)."""
        return dict(self.parts).get(mode)

    def problem(self, type_name: str, *, component: str | None, mode: str | None) -> str | None:
        """Why a component or failure mode is not this type's ('comp9 is not a component of …'), or None."""
        reasons = [
            f"{value} is not a {what} of {type_name} ({', '.join(names) or 'it declares none'})"
            for value, names, what in (
                (component, self.components, "component"),
                (mode, self.modes, "failure mode"),
            )
            if value and value not in names
        ]
        return "; ".join(reasons) or None


def declared(conn: Session | Connection, names: Collection[str]) -> dict[str, Declared]:
    """What each defined type among `names` declares (a name no types file defines is left out)."""
    query = (
        select(MachineTypeVersion.name, MachineTypeVersion.definition)
        .where(MachineTypeVersion.name.in_(list(names)))
        .order_by(MachineTypeVersion.name, MachineTypeVersion.version)
    )
    found: dict[str, dict[str, dict[str, None]]] = {}
    parts: dict[str, dict[str, str]] = {}
    for name, definition in conn.execute(query):
        seen = found.setdefault(name, {"components": {}, "failure_modes": {}, "codes": {}})
        for key, field in (("components", "name"), ("failure_modes", "name"), ("codes", "code")):
            seen[key].update((str(item[field]), None) for item in definition.get(key) or [])
        modes = definition.get("failure_modes") or []
        parts.setdefault(name, {}).update((str(m["name"]), str(m["component"])) for m in modes)
    return {
        name: Declared(*(tuple(names) for names in seen.values()), parts=tuple(parts[name].items()))
        for name, seen in found.items()
    }


def declared_for(
    conn: Session | Connection, machine_ids: Collection[int]
) -> dict[int, tuple[str, Declared | None]]:
    """Each machine's type name and what it declares (None: no types file defines that type yet)."""
    ids = sorted(set(machine_ids))
    types: dict[int, str] = {}
    for i in range(0, len(ids), _CHUNK):
        query = select(Machine.id, Machine.machine_type).where(Machine.id.in_(ids[i : i + _CHUNK]))
        types.update((machine_id, name) for machine_id, name in conn.execute(query))
    found = declared(conn, set(types.values()))
    return {machine_id: (name, found.get(name)) for machine_id, name in types.items()}


def sensor_specs(conn: Session | Connection, name: str) -> dict[str, SensorSpec]:
    """Every sensor the type has ever had, as its newest version describes it.

    A sensor removed from a type keeps the words and unit of the last version that had it, so data
    stored under an older version still read and chart as before.
    """
    query = (
        select(MachineTypeVersion.definition)
        .where(MachineTypeVersion.name == name)
        .order_by(MachineTypeVersion.version)
    )
    specs: dict[str, SensorSpec] = {}
    for definition in conn.execute(query).scalars():
        for s in definition.get("sensors", []):
            specs[s["name"]] = SensorSpec.from_definition(s)
    return specs


def specs_by_type(conn: Session | Connection) -> Callable[[str], dict[str, SensorSpec]]:
    """`sensor_specs` for a run over many machines: each type read once, at its first ask (not to mutate)."""
    return functools.cache(lambda name: sensor_specs(conn, name))


def _newest_definition(conn: Session | Connection, name: str) -> dict:
    """The newest version's definition of a type ({} for a type no types file defines)."""
    newest = conn.execute(
        select(MachineTypeVersion.definition)
        .where(MachineTypeVersion.name == name)
        .order_by(MachineTypeVersion.version.desc())
        .limit(1)
    ).scalar()
    return newest or {}


def model_specs(conn: Session | Connection, name: str) -> dict[str, SensorSpec]:
    """`sensor_specs` as a model reads them: a sensor the newest version dropped keeps its words and
    unit, not its OEM limits (the OEM no longer gives them: no alert or forecast is made to them)."""
    kept = {s["name"] for s in _newest_definition(conn, name).get("sensors", [])}
    return {
        n: s if n in kept else replace(s, warning=None, alarm=None)
        for n, s in sensor_specs(conn, name).items()
    }


def training_settings(conn: Session | Connection, name: str) -> dict:
    """How the type's newest version says to train it (its `training:` block; a key it leaves out, or a
    type no types file defines: the fleet-wide default)."""
    return dict(_newest_definition(conn, name).get(TRAINING) or {})


def to_yaml(definition: dict) -> str:
    """A definition as a types file holding just that type (reads back to the same definition)."""
    doc = {"machine_types": [definition]}
    # flow style for the innermost lists and mappings: one line per sensor range, code, component
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=None, width=110)
