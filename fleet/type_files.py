"""Machine-type files (YAML or TOML): read, check every field, and say where a problem is (file:line)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleet import file_values, text_files
from fleet.errors import InvalidInput
from fleet.type_checks import SIMULATION, Checker, Path_, Problem, compose_yaml, unstorable


class TypesFileError(InvalidInput):
    """A types file that cannot be applied; every problem found is listed with its line."""

    code = "invalid_types_file"

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class TypesFile:
    """The checked definitions of a file (what the store keeps) and each type's simulation block."""

    source: str
    definitions: dict[str, dict]
    simulation: dict[str, dict]


def read(path: str | Path) -> TypesFile:
    """Read and check a YAML (.yaml/.yml) or TOML (.toml) types file."""
    path = Path(path)
    try:
        text = text_files.read(path)
    except text_files.FileProblem as exc:
        raise TypesFileError([exc.problem]) from None
    return parse(text, source=str(path), toml=path.suffix.lower() == ".toml")


def parse(text: str, *, source: str, toml: bool = False) -> TypesFile:
    """Check a types file's text; raise `TypesFileError` naming every problem's line and field."""
    data, lines, problems = (_load_toml if toml else _load_yaml)(text, source)
    if not problems:
        problems = Checker(source, lines).check(data)
    if problems:
        raise TypesFileError(problems)
    definitions, simulation = {}, {}
    for item in data["machine_types"]:
        definitions[item["name"]] = {k: _stored(v) for k, v in item.items() if k != SIMULATION}
        simulation[item["name"]] = item.get(SIMULATION) or {}
    return TypesFile(source, definitions, simulation)


def _stored(value: Any) -> Any:
    """Values as the store keeps them: codes as text, whole-number floats left as written."""
    if isinstance(value, list):
        return [_stored(v) for v in value]
    if isinstance(value, dict):
        return {k: str(v) if k == "code" else _stored(v) for k, v in value.items()}
    return value


def _load_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int], list[Problem]]:
    node, data, lines, problems = compose_yaml(text, source)
    if node is not None:
        _codes_as_written(node, data)
    return data, lines, problems


def _codes_as_written(node: yaml.Node, data: Any) -> None:
    """Alarm codes as the file spells them: YAML would read `0101` as the octal number 65."""
    types = _child(node, "machine_types")
    if not isinstance(types, yaml.SequenceNode) or not isinstance(data.get("machine_types"), list):
        return
    for type_node, item in zip(types.value, data["machine_types"], strict=False):
        codes = _child(type_node, "codes")
        if not isinstance(codes, yaml.SequenceNode) or not isinstance(item, dict):
            continue
        for code_node, code in zip(codes.value, item.get("codes") or [], strict=False):
            written = _child(code_node, "code")
            if isinstance(written, yaml.ScalarNode) and isinstance(code.get("code"), int | float):
                code["code"] = written.value


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    """The value node of `key` in a mapping node (None for anything else)."""
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if k.value == key), None)


def _load_toml(text: str, source: str) -> tuple[Any, dict[Path_, int], list[Problem]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        return None, {}, [Problem(source, line, "file", f"not valid TOML: {exc}")]
    except RecursionError:
        return None, {}, [Problem(source, None, "file", "not valid TOML: nested too deep")]
    except ValueError:  # tomllib leaves Python's limit on the digits of a number to int()
        line, reason = file_values.long_number(text) or (None, "a number too large to read")
        return None, {}, [Problem(source, line, "file", reason)]
    lines = _toml_lines(text)
    return data, lines, unstorable(data, lines, source)


def _toml_lines(text: str) -> dict[Path_, int]:
    """Line of each table header and key, found by scanning (tomllib reports no positions)."""
    lines: dict[Path_, int] = {}
    counts: dict[Path_, int] = {}
    prefix: Path_ = ()
    for n, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        header = re.match(r"^(\[\[?)\s*([^\]]+?)\s*\]\]?", s)
        if header:
            path: Path_ = ()
            parts = [p.strip().strip("\"'") for p in header.group(2).split(".")]
            for i, part in enumerate(parts):
                path += (part,)
                if i == len(parts) - 1 and header.group(1) == "[[":
                    counts[path] = counts.get(path, 0) + 1
                    lines.setdefault(path, n)
                if path in counts:
                    path += (counts[path] - 1,)
            lines[path] = n
            prefix = path
            continue
        key = re.match(r"^([A-Za-z0-9_\-.\"']+)\s*=", s)
        if key:
            parts = tuple(p.strip().strip("\"'") for p in key.group(1).split("."))
            lines[prefix + parts] = n
    return lines
