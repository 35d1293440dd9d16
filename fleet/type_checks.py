"""The rules of a machine-types file, checked field by field; each problem keeps its file, line and field."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from typing import Any

import yaml

from fleet import contract, file_values, type_simulation, type_training
from fleet.tables import MachineEvent

SEVERITIES = ("info", "warning", "error", "critical")
BAD_DIRECTIONS = ("high", "low")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
# Keys the store keeps per level (`training` too: `servicecast train` reads it from the store, and a change
# to it is the type's next version); `simulation` is read by the simulator only and never stored.
TYPE_KEYS = {
    "name",
    "display_name",
    "description",
    "sensors",
    "components",
    "failure_modes",
    "codes",
    "training",
}
SIMULATION, TRAINING = "simulation", "training"
SENSOR_KEYS = {"name", "unit", "display_name", "range", "warning", "alarm", "bad", "alarm_on_delay_s"}
COMPONENT_KEYS = {"name", "display_name"}
MODE_KEYS = {"name", "component", "description"}
CODE_KEYS = {"code", "severity", "text"}
MAX_VALUES = 100_000  # values aliases may add by repeating others; the shipped files have none
MAX_DEPTH = 32  # levels of nesting; the shipped files have up to 9
# Characters of free text: a display name as the store's other names (customers, sites, users, offer
# titles), a description as the API's free texts (a finding, a reason), a unit as a reading's suffix.
DISPLAY_NAME_MAX = 200
TEXT_MAX = 4000
UNIT_MAX = 32
CODE_MAX = MachineEvent.code.type.length  # an event's code: a longer one no machine can send

Path_ = tuple[str | int, ...]


def name_problem(value: Any) -> str | None:
    """Why `value` cannot name a type, sensor, component or failure mode, or None."""
    if isinstance(value, str) and NAME.match(value):
        return None
    return f"{value!r} is not a name (letters, digits, _ . -; starting with a letter)"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a types file, with where it is."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}"


def field_name(path: Path_) -> str:
    """A field's path as a person writes it: `machine_types[0].sensors[2].unit`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "file"


def line_of(path: Path_, lines: dict[Path_, int]) -> int | None:
    """The line of the deepest part of `path` the file has (a missing field points at its parent)."""
    return next((lines[path[:i]] for i in range(len(path), -1, -1) if path[:i] in lines), None)


def compose_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any, dict[Path_, int], list[Problem]]:
    """A YAML file's nodes, data and the line of every field, with its problems (not YAML, a key twice).

    Aliases are counted before anything is built from them: a few lines of them can stand for 10^9 values.
    """
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            too_big = _too_big(node) if node is not None else None
            if too_big is not None:
                return None, None, {}, [Problem(source, too_big[0].start_mark.line + 1, "file", too_big[1])]
            # Keys given twice are seen before construction flattens merge keys (`<<: *a`), whose values
            # a mapping's own keys may override.
            lines: dict[Path_, int] = {}
            problems: list[Problem] = []
            if node is not None:
                _yaml_lines(node, (), lines, problems, source)
            # What yaml.safe_load would return, built from the nodes already parsed rather than parsing again.
            try:
                data = loader.construct_document(node) if node is not None else None
            except (ValueError, TypeError, AttributeError, OverflowError):  # a scalar YAML cannot build
                found = file_values.unbuildable(node)
                if found is None:
                    raise
                path, bad, reason = found
                return None, None, {}, [Problem(source, bad.start_mark.line + 1, field_name(path), reason)]
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        return (
            None,
            None,
            {},
            [Problem(source, _error_line(exc, text), "file", f"not valid YAML: {_problem(exc)}")],
        )
    except RecursionError:
        return None, None, {}, [Problem(source, None, "file", f"nested more than {MAX_DEPTH} levels deep")]
    return node, data, lines, problems + unstorable(data, lines, source)


def unstorable(data: Any, lines: dict[Path_, int], source: str) -> list[Problem]:
    """A problem for each text of `data`, keys too, that no store can hold: a NUL or a lone surrogate."""
    problems = []
    stack: list[tuple[Path_, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((path + (key,), key) for key in value if isinstance(key, str))
            stack.extend((path + (key,), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((path + (i,), item) for i, item in enumerate(value))
        elif isinstance(value, str) and (reason := _bad_text(value)):
            problems.append(Problem(source, line_of(path, lines), field_name(path), reason))
    return sorted(set(problems), key=lambda p: (p.line or 0, p.field))


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "has a NUL character (\\0, \\u0000), which no store can hold"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "has half of a UTF-16 surrogate pair (\\ud800-\\udfff), which is not text"
    return None


def _error_line(exc: yaml.YAMLError, text: str) -> int | None:
    """The line a YAML error is at: its mark, or the position of a character YAML does not read."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return mark.line + 1
    if isinstance(exc, yaml.reader.ReaderError):
        return text.count("\n", 0, exc.position) + 1
    return None


def _problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        return f"character {char!r} is not allowed"
    return str(getattr(exc, "problem", exc))


def _too_big(root: yaml.Node) -> tuple[yaml.Node, str] | None:
    """The first node nested too deep, inside itself, or whose aliases repeat too many values (else None).

    Depth first without recursion, each distinct node sized once: the check itself never expands an alias.
    """
    sizes: dict[int, int] = {}
    opened: set[int] = set()
    repeated = 0  # values that aliases add to the file's own
    stack: list[tuple[yaml.Node, int, yaml.Node]] = [(root, 1, root)]
    while stack:
        node, depth, parent = stack[-1]
        if id(node) in sizes:  # met again through an alias: its values count again
            stack.pop()
            repeated += sizes[id(node)]
            if repeated > MAX_VALUES:
                return parent, f"aliases repeat more than {MAX_VALUES:,} values"
            continue
        if depth > MAX_DEPTH:
            return node, f"nested more than {MAX_DEPTH} levels deep"
        children = _children(node)
        if id(node) in opened:
            stack.pop()
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            continue
        opened.add(id(node))
        for child in children:
            if id(child) in opened and id(child) not in sizes:
                return node, "an alias refers to a node that contains it"
            stack.append((child, depth + 1, node))
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _yaml_lines(node: yaml.Node, path: Path_, lines: dict, problems: list, source: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            name = key.value
            if not isinstance(key, yaml.ScalarNode):
                continue  # a list or mapping as a key: construction refuses it
            if name in seen:
                problems.append(
                    Problem(source, key.start_mark.line + 1, field_name(path + (name,)), "given twice")
                )
            seen.add(name)
            lines[path + (name,)] = key.start_mark.line + 1
            _yaml_lines(value, path + (name,), lines, problems, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _yaml_lines(item, path + (i,), lines, problems, source)


class Checker:
    """Collects every problem of a parsed file rather than stopping at the first."""

    def __init__(self, source: str, lines: dict[Path_, int]):
        self.source, self.lines, self.problems = source, lines, []

    def bad(self, path: Path_, message: str) -> None:
        self.problems.append(Problem(self.source, line_of(path, self.lines), field_name(path), message))

    def check(self, data: Any) -> list[Problem]:
        """Every problem of a parsed file (an empty list when it can be applied)."""
        if not isinstance(data, dict) or not isinstance(data.get("machine_types"), list):
            self.bad(("machine_types",), "a list of machine types is required at the top level")
            return self.problems
        for key in set(data) - {"machine_types"}:
            self.bad((key,), "unknown key (expected only machine_types)")
        names = set()
        for i, item in enumerate(data["machine_types"]):
            path = ("machine_types", i)
            if not self.mapping(path, item, TYPE_KEYS | {SIMULATION}, required=("name", "sensors")):
                continue
            self.unique(path + ("name",), item.get("name"), names)
            self.text(
                path + ("display_name",), item.get("display_name"), optional=True, limit=DISPLAY_NAME_MAX
            )
            self.text(path + ("description",), item.get("description"), optional=True)
            if item.get(SIMULATION) not in (None, {}):  # none: the type is not simulated
                type_simulation.check(self, path + (SIMULATION,), item[SIMULATION], item)
            if TRAINING in item:
                type_training.check(self, path + (TRAINING,), item[TRAINING])
            self.sensors(path + ("sensors",), item.get("sensors"))
            comps = self.items(path + ("components",), item.get("components"), COMPONENT_KEYS, self.component)
            self.items(
                path + ("failure_modes",),
                item.get("failure_modes"),
                MODE_KEYS,
                lambda p, m, comps=comps: self.mode(p, m, comps),
            )
            self.items(path + ("codes",), item.get("codes"), CODE_KEYS, self.code, key="code")
        return self.problems

    def mapping(self, path: Path_, value: Any, allowed: set[str], *, required: tuple[str, ...]) -> bool:
        if not isinstance(value, dict):
            self.bad(path, "must be a mapping")
            return False
        for key in sorted(set(value) - allowed, key=str):  # YAML keys may be numbers, dates, null
            self.bad(path + (key,), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for key in required:
            if key not in value:
                self.bad(path + (key,), "is required")
        return True

    def unique(self, path: Path_, value: Any, seen: set, *, pattern: bool = True) -> None:
        if pattern and (problem := name_problem(value)):
            if value is not None:
                self.bad(path, problem)
            return
        if isinstance(value, list | dict):
            return  # not a code either: the field's own check says so
        if value in seen:
            self.bad(path, f"{value!r} is defined twice")
        seen.add(value)

    def text(self, path: Path_, value: Any, *, optional: bool = False, limit: int = TEXT_MAX) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str) or (not value.strip() and not optional):
            self.bad(path, "must be text")
        elif len(value) > limit:
            self.bad(path, f"has {len(value):,} characters, more than {limit:,}")

    def number(self, path: Path_, value: Any) -> bool:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max:
            self.bad(path, file_values.too_large(len(str(abs(value)))))
            return False
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.bad(path, f"{value!r} is not a finite number")
            return False
        return True

    def items(self, path: Path_, values: Any, allowed: set[str], each, *, key: str = "name") -> set:  # noqa: ANN001
        seen: set = set()
        if values is None:
            return seen
        if not isinstance(values, list):
            self.bad(path, "must be a list")
            return seen
        required = {"name": ("name",), "code": ("code", "severity", "text")}[key]
        for i, value in enumerate(values):
            if self.mapping(path + (i,), value, allowed, required=required):
                self.unique(path + (i, key), value.get(key), seen, pattern=key == "name")
                each(path + (i,), value)
        return seen

    def sensors(self, path: Path_, values: Any) -> None:
        if isinstance(values, list) and not values:
            self.bad(path, "at least one sensor is required")
        self.items(path, values, SENSOR_KEYS, self.sensor)

    def sensor(self, path: Path_, s: dict) -> None:
        name = s.get("name")
        if isinstance(name, str) and NAME.match(name) and not contract.SENSOR_PATTERN.match(name):
            self.bad(
                path + ("name",),
                f"{name!r} is not a sensor name the telemetry contract takes: letters, digits and _ only",
            )
        if "unit" not in s:
            self.bad(path + ("unit",), 'is required (use "" for a number without unit)')
        elif not isinstance(s["unit"], str):
            self.bad(path + ("unit",), "must be text")
        else:
            self.text(path + ("unit",), s["unit"], optional=True, limit=UNIT_MAX)
        self.text(path + ("display_name",), s.get("display_name"), optional=True, limit=DISPLAY_NAME_MAX)
        rng, expected = s.get("range"), None
        if rng is not None:
            ok = isinstance(rng, list) and len(rng) == 2
            if not ok or not all(self.number(path + ("range", i), v) for i, v in enumerate(rng)):
                if not ok:
                    self.bad(path + ("range",), "must be [low, high]")
            elif rng[0] >= rng[1]:
                self.bad(path + ("range",), f"low {rng[0]} must be below high {rng[1]}")
            else:
                expected = rng
        limits = {k: s[k] for k in ("warning", "alarm") if k in s and self.number(path + (k,), s[k])}
        for key, value in limits.items():
            if expected and not expected[0] <= value <= expected[1]:
                self.bad(
                    path + (key,), f"{value} lies outside the expected range [{expected[0]}, {expected[1]}]"
                )
        bad = s.get("bad")
        if bad is not None and bad not in BAD_DIRECTIONS:
            self.bad(path + ("bad",), f"{bad!r} must be one of {', '.join(BAD_DIRECTIONS)}")
        elif limits and bad is None:
            self.bad(path + ("bad",), "is required with warning/alarm limits: high or low")
        elif len(limits) == 2 and bad is not None:
            later = (
                limits["alarm"] >= limits["warning"]
                if bad == "high"
                else limits["alarm"] <= limits["warning"]
            )
            if not later:
                self.bad(path + ("alarm",), f"an alarm limit comes after the warning limit when {bad} is bad")
        delay = s.get("alarm_on_delay_s")
        if delay is not None and self.number(path + ("alarm_on_delay_s",), delay):
            if delay < 0:
                self.bad(path + ("alarm_on_delay_s",), f"{delay} must be 0 (a single reading counts) or more")
            elif not limits:
                self.bad(path + ("alarm_on_delay_s",), "delays a warning or alarm limit: give one")

    def component(self, path: Path_, c: dict) -> None:
        self.text(path + ("display_name",), c.get("display_name"), optional=True, limit=DISPLAY_NAME_MAX)

    def mode(self, path: Path_, m: dict, components: set) -> None:
        if "component" not in m:
            self.bad(path + ("component",), "is required")
        elif not isinstance(m["component"], str) or m["component"] not in components:
            self.bad(path + ("component",), f"{m['component']!r} is not one of this type's components")
        if "description" not in m:
            self.bad(path + ("description",), "is required: say in plain words what fails")
        else:
            self.text(path + ("description",), m["description"])

    def code(self, path: Path_, c: dict) -> None:
        if (
            c.get("code") is not None
            and not isinstance(c["code"], (str, int))
            or isinstance(c.get("code"), bool)
        ):
            self.bad(path + ("code",), "must be text or a whole number")
        elif len(str(c.get("code", ""))) > CODE_MAX:
            self.bad(path + ("code",), f"has more than {CODE_MAX} characters: no event's code can")
        elif "code" in c and not contract.CODE_PATTERN.match(code := str(c["code"])):
            self.bad(
                path + ("code",),
                f"{code!r} is not a code the events contract takes ({contract.CODE_RULE}): "
                "every event with it would be quarantined",
            )
        if "severity" in c and c["severity"] not in SEVERITIES:
            self.bad(path + ("severity",), f"{c['severity']!r} must be one of {', '.join(SEVERITIES)}")
        if "text" in c:
            self.text(path + ("text",), c["text"])
