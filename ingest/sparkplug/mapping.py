"""The map file: group / edge node / device → tenant and machine; metric names → sensors and events."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fleet import credentials, errors, text_files
from fleet.type_checks import SEVERITIES
from ingest.sparkplug.decode import LONGEST


@dataclass(frozen=True, slots=True)
class EventRule:
    """A metric that raises an event with this code whenever it arrives true (or non-zero)."""

    code: str
    severity: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """Where one Sparkplug edge node's (or device's) metrics go."""

    tenant: str
    machine: str
    sensors: dict[str, str] = field(default_factory=dict)
    events: dict[str, EventRule] = field(default_factory=dict)


class MapError(ValueError):
    """The map file is not valid; the message says where."""


def _id_problem(name: str, value: str) -> str | None:
    """Why a map's group, edge_node or device id is refused, or None."""
    try:
        # Only what Sparkplug reserves: ':' and spaces travel in topics, though no broker identity servicecast
        # issues can hold them (an external broker's can).
        credentials.sparkplug_topic_id(value)
    except errors.InvalidInput as exc:
        return str(exc)
    longest = LONGEST.get(name.replace("_", " "))  # the device id is kept in no column
    if longest is not None and len(value) > longest:
        return f"{len(value)} characters, more than {longest} (the host quarantines it: sparkplug_bad_topic)"
    return None


@dataclass(frozen=True, slots=True)
class Mapping:
    """Targets by (group, edge node, device or None for the node's own metrics)."""

    targets: dict[tuple[str, str, str | None], Target]
    nodes: frozenset[tuple[str, str]] = field(init=False)  # (group, edge node) of every target

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", frozenset((group, node) for group, node, _ in self.targets))

    def target(self, group: str, edge_node: str, device: str | None) -> Target | None:
        """The target of these metrics, or None when the map does not name them."""
        return self.targets.get((group, edge_node, device))

    def knows(self, group: str, edge_node: str) -> bool:
        """Whether the map names this edge node (itself or one of its devices)."""
        return (group, edge_node) in self.nodes

    @classmethod
    def load(cls, path: str | Path) -> Mapping:
        """Read and check a map file (YAML)."""
        try:
            data = text_files.read_yaml(Path(path))
        except text_files.FileProblem as exc:
            raise MapError(f"cannot read the Sparkplug map {exc}") from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: object, where: str = "map") -> Mapping:
        """Check a decoded map: a `machines` list, each with group, edge_node, tenant, machine."""
        if not isinstance(data, dict) or not isinstance(data.get("machines"), list):
            raise MapError(f"{where}: expected a mapping with a 'machines' list")
        targets: dict[tuple[str, str, str | None], Target] = {}
        for i, entry in enumerate(data["machines"]):
            at = f"{where}: machines[{i}]"
            if not isinstance(entry, dict):
                raise MapError(f"{at} is not a mapping")
            missing = [k for k in ("group", "edge_node", "tenant", "machine") if not entry.get(k)]
            if missing:
                raise MapError(f"{at} lacks {', '.join(missing)}")
            device = entry.get("device")
            key = (str(entry["group"]), str(entry["edge_node"]), None if device is None else str(device))
            for name, value in zip(("group", "edge_node", "device"), key, strict=True):
                problem = None if value is None else _id_problem(name, value)
                if problem is not None:
                    raise MapError(f"{at}: {name}: {problem}")
            if key in targets:
                raise MapError(f"{at} maps {'/'.join(k for k in key if k)} a second time")
            sensors = entry.get("sensors") or {}
            events = entry.get("events") or {}
            if not isinstance(sensors, dict) or not isinstance(events, dict):
                raise MapError(f"{at}: sensors and events map metric names to sensors and event codes")
            rules = {}
            for metric, rule in events.items():
                rule = rule if isinstance(rule, dict) else {"code": rule}
                severity = rule.get("severity")
                if not rule.get("code") or (severity is not None and severity not in SEVERITIES):
                    raise MapError(f"{at}: event {metric!r} needs a code and a severity among {SEVERITIES}")
                rules[str(metric)] = EventRule(str(rule["code"]), severity)
            targets[key] = Target(
                str(entry["tenant"]),
                str(entry["machine"]),
                {str(k): str(v) for k, v in sensors.items()},
                rules,
            )
        return cls(targets)
