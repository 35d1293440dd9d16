"""The OPC UA map file: which nodes of a machine's server become which sensors and event codes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fleet import contract, text_files

NODE_ID = re.compile(r"^(ns=\d+|nsu=[^;]+);[isgb]=.+$|^i=\d+$")
DEFAULT_SAMPLING_MS = 1000.0
DEFAULT_PUBLISHING_MS = 500.0


class MapError(ValueError):
    """The map file is not valid; the message names the entry."""


@dataclass(frozen=True)
class Variable:
    """A node whose value changes become one sensor's readings."""

    node: str
    sensor: str
    sampling_interval_ms: float = DEFAULT_SAMPLING_MS
    # Text states (e.g. MachineryItemState's CurrentState) as numbers, so that they fit `readings`.
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Alarms:
    """A notifier whose alarm and condition events become servicecast events."""

    source: str
    codes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Mapping:
    """One machine: its identity in servicecast and the nodes to read and watch on its server."""

    tenant: str
    machine: str
    publishing_interval_ms: float
    identification: dict[str, str]
    variables: tuple[Variable, ...]
    alarms: tuple[Alarms, ...]

    def nodes(self) -> list[str]:
        """Every node id the map names, in file order."""
        return [
            *self.identification.values(),
            *(v.node for v in self.variables),
            *(a.source for a in self.alarms),
        ]


def load(path: Path) -> Mapping:
    """Read and check a map file."""
    try:
        raw = text_files.read_yaml(path)
    except text_files.FileProblem as exc:
        raise MapError(f"cannot read map {exc}") from None
    if not isinstance(raw, dict):
        raise MapError(f"map {path} must be a YAML mapping")
    return parse(raw)


def parse(raw: dict) -> Mapping:
    """A checked Mapping from the decoded YAML."""
    tenant, machine = str(raw.get("tenant", "")), str(raw.get("machine", ""))
    if not contract.TENANT_PATTERN.fullmatch(tenant):
        raise MapError(f"tenant {tenant!r} is missing or has characters outside [A-Za-z0-9._-]")
    if not contract.MACHINE_PATTERN.fullmatch(machine):
        raise MapError(f"machine {machine!r} is missing or has characters outside [A-Za-z0-9._-]")
    identification = {
        str(k): _node(v, f"identification.{k}") for k, v in (raw.get("identification") or {}).items()
    }
    variables = tuple(_variable(entry, i) for i, entry in enumerate(raw.get("variables") or []))
    if not variables:
        raise MapError("the map names no variables")
    sensors = [v.sensor for v in variables]
    if len(set(sensors)) != len(sensors):
        raise MapError(f"a sensor is mapped twice: {sorted(s for s in sensors if sensors.count(s) > 1)[0]}")
    alarms = tuple(_alarms(entry, i) for i, entry in enumerate(raw.get("alarms") or []))
    return Mapping(
        tenant=tenant,
        machine=machine,
        publishing_interval_ms=_positive(
            raw.get("publishing_interval_ms", DEFAULT_PUBLISHING_MS), "publishing"
        ),
        identification=identification,
        variables=variables,
        alarms=alarms,
    )


def _node(value: object, where: str) -> str:
    if not isinstance(value, str) or not NODE_ID.match(value):
        raise MapError(f"{where}: {value!r} is not an OPC UA node id (ns=2;s=…, nsu=URI;s=… or i=…)")
    return value


def _positive(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise MapError(f"{where} interval {value!r} must be a positive number of milliseconds")
    return float(value)


def _variable(entry: object, i: int) -> Variable:
    if not isinstance(entry, dict):
        raise MapError(f"variables[{i}] must be a mapping with node and sensor")
    sensor = str(entry.get("sensor", ""))
    if not contract.SENSOR_PATTERN.match(sensor):
        raise MapError(f"variables[{i}].sensor {sensor!r} is not 1 to 64 of [A-Za-z0-9_]")
    values = entry.get("values") or {}
    if not isinstance(values, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values.values()
    ):
        raise MapError(f"variables[{i}].values must map each text to a number")
    return Variable(
        node=_node(entry.get("node"), f"variables[{i}].node"),
        sensor=sensor,
        sampling_interval_ms=_positive(
            entry.get("sampling_interval_ms", DEFAULT_SAMPLING_MS), f"variables[{i}] sampling"
        ),
        values={str(k): float(v) for k, v in values.items()},
    )


def _alarms(entry: object, i: int) -> Alarms:
    if not isinstance(entry, dict):
        raise MapError(f"alarms[{i}] must be a mapping with source")
    codes = {str(k): str(v) for k, v in (entry.get("codes") or {}).items()}
    for condition, code in codes.items():
        if not contract.CODE_PATTERN.match(code):
            raise MapError(f"alarms[{i}].codes.{condition} {code!r} is not {contract.CODE_RULE}")
    return Alarms(source=_node(entry.get("source"), f"alarms[{i}].source"), codes=codes)
