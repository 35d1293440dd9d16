"""What every CSV import shares: column mapping, rows with their line numbers, times, rejects and reports."""

from __future__ import annotations

import csv
import errno
import gzip
import os
import tempfile
import tomllib
import zlib
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from fleet import display, errors, file_values, text_files
from fleet.tables.labels import LABEL_KINDS

_SETTINGS = ("tenant", "kind", "time_format", "timezone", "delimiter", "age_at", "machine_type")
# The fields each import reads (a column of the field's own name unless mapped). One mapping file may serve
# several imports (docs/examples/azure_pdm/mapping.toml), so a field any of them reads is a known one.
MACHINE_FIELDS = ("machine", "tenant", "machine_type", "installed", "age", "site", "site_timezone", "serial")
MACHINE_FIELDS += ("customer_name", "contract_tier")
HISTORY_FIELDS = ("ts", "machine", "tenant", "kind", "component", "mode", "activity", "ref")
TELEMETRY_FIELDS = ("tenant", "machine", "ts", "seq")
EVENT_FIELDS = ("code", "severity", "text")
_KNOWN = {*MACHINE_FIELDS, *HISTORY_FIELDS, *TELEMETRY_FIELDS, *EVENT_FIELDS}
# Characters of a line (or of a quoted field over lines) an import reads: a longer line's row is refused
# unread, so that a hostile or broken file cannot take the memory of the process.
MAX_LINE = 2**20
# Rejected rows an import keeps to list by line; the rest are counted (and spooled for a reject file).
LISTED = 50


@dataclass(frozen=True)
class ColumnMap:
    """How a file's columns and values map to an import's fields; an unmapped field reads its own name."""

    columns: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    tenant: str | None = None
    kind: str | None = None
    time_format: str | None = None
    timezone: str = "UTC"
    delimiter: str = ","
    age_at: str | None = None
    machine_type: str | None = None  # every machine of the file is of this type (no type column)

    def __post_init__(self) -> None:
        check_time_format(self.time_format)

    def column(self, name: str) -> str:
        """The file's column for field `name`."""
        return self.columns.get(name, name)

    def merged(self, **overrides: object) -> ColumnMap:
        """This map with the given settings (None: keep) and `columns` entries replaced."""
        values = {k: getattr(self, k) for k in _SETTINGS}
        values.update({k: v for k, v in overrides.items() if k in _SETTINGS and v is not None})
        columns = self.columns | dict(overrides.get("columns") or {})
        return ColumnMap(columns=columns, kinds=self.kinds, **values)  # type: ignore[arg-type]


def check_time_format(fmt: str | None) -> None:
    """InvalidInput for a strptime format with a directive it lacks: every row would be refused."""
    if not fmt:
        return
    try:
        datetime.strptime("", fmt)
    except ValueError as exc:
        if "directive" in str(exc) or "stray %" in str(exc):  # not "does not match": the format itself
            raise errors.InvalidInput(f"time_format {fmt!r}: {exc}") from None


def load_map(path: Path | None) -> ColumnMap:
    """A mapping file (TOML: settings at the top, `[columns]` field = file column, `[kinds]` value = kind)."""
    if path is None:
        return ColumnMap()
    try:
        text = text_files.read(Path(path))
        data = tomllib.loads(text)
    except text_files.FileProblem as exc:
        raise errors.InvalidInput(f"mapping file {path}: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise errors.InvalidInput(f"mapping file {path}: {exc}") from None
    except ValueError:  # tomllib leaves Python's limit on the digits of a number to int()
        found = file_values.long_number(text)
        reason = f"line {found[0]}: {found[1]}" if found else "a number too large to read"
        raise errors.InvalidInput(f"mapping file {path}: {reason}") from None
    except RecursionError:
        raise errors.InvalidInput(f"mapping file {path}: not valid TOML: nested too deep") from None
    unknown = set(data) - {*_SETTINGS, "columns", "kinds"}
    if unknown:
        raise errors.InvalidInput(f"mapping file {path}: unknown keys {', '.join(sorted(unknown))}")
    _check_types(path, data)
    return ColumnMap(
        columns={str(k): str(v) for k, v in data.get("columns", {}).items()},
        kinds={str(k): str(v) for k, v in data.get("kinds", {}).items()},
        **{k: str(data[k]) for k in _SETTINGS if k in data},
    )


def _check_types(path: Path, data: dict) -> None:
    """InvalidInput naming a mapping file's first value that is not text (tomllib reads arrays and tables)."""
    for name, shape in (("columns", "field = column"), ("kinds", "value = kind")):
        if not isinstance(data.get(name, {}), dict):
            raise errors.InvalidInput(f"mapping file {path}: {name} must be a table of {shape}")
    settings = {k: data[k] for k in _SETTINGS if k in data}
    entries = {f"{t}.{k}": v for t in ("columns", "kinds") for k, v in data.get(t, {}).items()}
    wrong = [k for k, v in (settings | entries).items() if isinstance(v, list | dict)]
    if wrong:
        raise errors.InvalidInput(f"mapping file {path}: {wrong[0]} must be text")
    for value, kind in data.get("kinds", {}).items():
        if kind not in LABEL_KINDS:
            raise errors.InvalidInput(
                f"mapping file {path}: kinds.{value}: {kind!r} is not one of {', '.join(LABEL_KINDS)}"
            )


def parse_columns(pairs: list[str] | None) -> dict[str, str]:
    """`field=column` option values as a dict."""
    out = {}
    for pair in pairs or []:
        name, sep, column = pair.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise errors.InvalidInput(f"--column {pair!r} is not FIELD=COLUMN")
        out[name.strip()] = column.strip()
    return out


def read_rows(
    path: Path,
    mapping: ColumnMap,
    *,
    required: tuple[str, ...],
    fields: tuple[str, ...],
    max_line: int = MAX_LINE,
) -> Iterator[tuple[int, dict]]:
    """Rows of a CSV file (gzip if named .gz) as (line number, {column: text}); checks the header first.

    The file is read twice, a line at a time: first its quoting, so that a broken file is refused before any
    write. A row with a line longer than `max_line` characters is `Unread`; one that long over lines refuses
    the file (`_Lines`): memory stays within `max_line` however long the file or its lines.
    """
    if len(mapping.delimiter) != 1 or mapping.delimiter in '"\r\n':
        raise errors.InvalidInput(
            f"delimiter {mapping.delimiter!r} is not one character other than quote or newline"
        )
    # A long cell is for the import's checks, not a csv.Error; `_Lines` bounds what the csv module holds.
    csv.field_size_limit(max(csv.field_size_limit(), max_line))
    _check_quoting(path, _Lines(path, max_line), mapping.delimiter)
    lines = _Lines(path, max_line)
    reader = csv.reader(lines, delimiter=mapping.delimiter, strict=True)  # as the check read it
    header = next(reader, [])
    if lines.long:
        raise errors.InvalidInput(f"{path}: line 1: the header is longer than {max_line} characters")
    check_header(path, header, mapping, required=required, fields=fields)
    lines.next_row()
    start = reader.line_num + 1
    try:
        for cells in reader:
            if lines.long:
                yield reader.line_num, Unread(f"a line longer than {max_line} characters, not read")
            elif cells:  # a blank line is no row
                yield reader.line_num, _row(header, cells)
            lines.next_row()
            start = reader.line_num + 1
    except csv.Error as exc:  # not guessed as the csv module would: what the check refuses
        raise errors.InvalidInput(
            f"{path}: line {start}: {_quoting(exc)}: the file changed after its quoting was checked"
        ) from None


def _row(header: list[str], cells: list[str]) -> dict:
    """{column: text} as `csv.DictReader` makes it: surplus cells under None, missing ones None."""
    row: dict = dict(zip(header, cells, strict=False))
    if len(cells) > len(header):
        row[None] = cells[len(header) :]
    return row | dict.fromkeys(header[len(cells) :])


class Unread(dict):
    """A row not read, for the reason `check_row` gives (a line too long to hold)."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class _Lines:
    """A CSV file's lines for the csv module: one longer than `limit` characters as '' (its number in
    `long`); InvalidInput when the row being read grows past `limit` over several lines (a quoted field)."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path, self.limit = path, limit
        self.long: list[int] = []  # of the row being read
        self.size = 0  # characters of the row being read
        self.first = 0  # its first line, once read

    def next_row(self) -> None:
        """The csv module has returned a row: the next line begins another."""
        self.long, self.size, self.first = [], 0, 0

    def __iter__(self) -> Iterator[str]:
        opener = gzip.open if str(self.path).endswith(".gz") else open
        try:
            for number, line in enumerate(text_files.lines(opener(self.path, "rb"), self.limit), 1):  # type: ignore[operator]
                self.first = self.first or number
                if line is None:
                    self.long.append(number)
                self.size += len(line or "")
                if self.size > self.limit:
                    raise errors.InvalidInput(
                        f"{self.path}: line {self.first}: a row longer than {self.limit} characters "
                        "over several lines (a quoted field): where the next row begins is not known"
                    )
                yield line or ""
        except (OSError, EOFError, zlib.error) as exc:  # EOFError: a gzip file cut short
            raise errors.InvalidInput(f"cannot read {self.path}: {exc}") from None
        except text_files.NotUtf8 as exc:
            raise errors.InvalidInput(f"{self.path}: {exc}") from None


def _check_quoting(path: Path, lines: _Lines, delimiter: str) -> None:
    """InvalidInput naming the line of a quote never closed or followed by more text (csv would guess)."""
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    start = 1
    try:
        for _ in reader:
            start = reader.line_num + 1
            lines.next_row()
    except csv.Error as exc:
        raise errors.InvalidInput(f"{path}: line {start}: {_quoting(exc)}") from None


def _quoting(exc: csv.Error) -> str:
    """What is wrong with a file's quoting, from the csv module's error."""
    return "a quoted field is never closed" if "unexpected end of data" in str(exc) else str(exc)


def check_header(
    path: Path, header: list[str], mapping: ColumnMap, *, required: tuple[str, ...], fields: tuple[str, ...]
) -> None:
    """InvalidInput naming a column the header has twice, a mapped field no import reads, or the missing
    column of a required field or of a mapped one of `fields` (this import's): a misspelt mapping fails."""
    if not header:
        raise errors.InvalidInput(f"{path}: the file is empty: the first line must name the columns")
    unknown = sorted(set(mapping.columns) - _KNOWN)
    if unknown:
        raise errors.InvalidInput(
            f"{path}: the column mapping names no field {', '.join(map(repr, unknown))}; "
            f"this import reads {', '.join(fields)}"
        )
    twice = sorted({name for name in header if name and header.count(name) > 1})
    if twice:
        raise errors.InvalidInput(
            f"{path}: line 1: column {', '.join(map(repr, twice))} is in the header twice; "
            "rename one: a row would keep only the last value"
        )
    wanted = [*required, *(n for n in fields if n in mapping.columns and n not in required)]
    missing = [f"{mapping.column(n)!r} ({n})" for n in wanted if mapping.column(n) not in header]
    if missing:
        raise errors.InvalidInput(
            f"{path}: no column {', '.join(missing)} in the header {header}; "
            f"map them with --column or a mapping file{_header_hint(header, mapping, wanted)}"
        )


def _header_hint(header: list[str], mapping: ColumnMap, wanted: list[str]) -> str:
    """What else may be wrong with a header that lacks columns: another separator, or no --tenant."""
    if len(header) == 1:
        for sep, name, option in ((";", "';' separates", "';'"), ("\t", "tabs separate", "$'\\t'")):
            if sep in header[0]:
                return f"; if {name} the columns, give --delimiter {option}"
    if "tenant" in wanted and mapping.column("tenant") not in header:
        return "; or give every row's tenant with --tenant"
    return ""


def check_row(row: Mapping[str | None, object]) -> None:
    """ValueError for a row not read, with values in the wrong columns, or with a NUL (PostgreSQL text cannot
    hold one)."""
    if isinstance(row, Unread):
        raise ValueError(row.reason)
    if None in row:
        raise ValueError("more fields than the header has")
    if None in row.values():
        raise ValueError("fewer fields than the header has")
    nul = next((column for column, value in row.items() if "\x00" in str(value)), None)
    if nul is not None:
        raise ValueError(f"column {nul!r} has a NUL character")


def text(row: Mapping[str, str | None], mapping: ColumnMap, name: str) -> str:
    """The stripped value of field `name` ('' when the file has no such column or the cell is empty)."""
    return (row.get(mapping.column(name)) or "").strip()


def tenant(row: Mapping[str, str | None], mapping: ColumnMap) -> str:
    """The row's tenant: its tenant column, else `mapping.tenant`; ValueError when the two disagree."""
    own = text(row, mapping, "tenant")
    if own and mapping.tenant and own != mapping.tenant:
        raise ValueError(f"tenant {own!r} is not {mapping.tenant!r} (--tenant)")
    return own or mapping.tenant or ""


def parse_time(value: str, mapping: ColumnMap, *, after: datetime | None = None) -> datetime:
    """A timestamp in UTC: ISO 8601 or `time_format`; one without an offset is in `mapping.timezone`.

    A local time the clocks pass twice (going back) is the later one when the earlier is before `after`,
    the same machine's previous row: a file in time order keeps both hours. One they skip is refused.
    """
    if not value:
        raise ValueError("no time")
    try:
        ts = (
            datetime.strptime(value, mapping.time_format)
            if mapping.time_format
            else datetime.fromisoformat(value)
        )
    except ValueError:
        wanted = mapping.time_format or "ISO 8601, e.g. 2015-01-05 06:00:00"
        raise ValueError(f"time {value!r} is not {wanted}") from None
    try:
        if ts.tzinfo is not None:
            return ts.astimezone(UTC)
        return _local(ts, zone(mapping.timezone), value, after)
    except OverflowError:  # year 1 or 9999 with an offset that crosses the calendar's edge
        raise ValueError(f"time {value!r} is out of range (in UTC before year 1 or after 9999)") from None


def _local(ts: datetime, tz: ZoneInfo, value: str, after: datetime | None) -> datetime:
    """A wall-clock time of zone `tz` in UTC (see `parse_time`)."""
    first, second = (ts.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1))
    if first == second:
        return first
    if first.astimezone(tz).replace(tzinfo=None) != ts:
        raise ValueError(
            f"time {value!r} does not exist in {tz.key} (the clocks go forward); give its offset"
        )
    return second if after is not None and first < after else first


def zone(name: str) -> ZoneInfo:
    """The time zone called `name` (InvalidInput if unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.InvalidInput(f"unknown time zone {name!r}") from None


def repeated(hashes: array) -> set[int]:
    """The hashes that stand more than once in `hashes` (of an import's keys, 8 bytes each rather than the
    key): the keys that may be given twice, or collide, and so are the only ones to keep by line."""
    import numpy as np  # here: the `machines` commands import this module, most of them with no file to read

    ordered = np.sort(np.frombuffer(hashes, dtype=np.int64))
    return set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())


class Reread:
    """What an import that reads `path` twice, rather than hold it, keeps of its first read: an 8-byte hash of
    each row as read, so that a later read can tell it meets the same rows. What the first read found (the
    keys given twice, the machines, sites or owners to look up) holds for the file it read only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._read = array("q")

    def first(self, rows: Iterable[tuple[int, dict]]) -> Iterator[tuple[int, dict]]:
        """`rows` of the first read, each noted as it goes by."""
        for line, row in rows:
            self._read.append(_as_read(line, row))
            yield line, row

    def again(self, rows: Iterable[tuple[int, dict]]) -> Iterator[tuple[int, dict]]:
        """`rows` of a later read; InvalidInput at the first that is not the row the first read found there,
        or at the end when there are fewer: the file changed in between."""
        count = 0
        for line, row in rows:
            if count == len(self._read) or self._read[count] != _as_read(line, row):
                raise self._changed(f"line {line}")
            count += 1
            yield line, row
        if count < len(self._read):
            raise self._changed("its end")

    def _changed(self, where: str) -> errors.InvalidInput:
        return errors.InvalidInput(
            f"{self.path} changed while it was imported (at {where}): nothing was written; import it again "
            "once nothing writes to it"
        )


def _as_read(line: int, row: dict) -> int:
    """A row's hash as read (its line and cells)."""
    return hash((line, repr(row)))


@dataclass(frozen=True)
class Reject:
    """A bad line of the file and why."""

    line: int
    reason: str
    row: dict


@dataclass
class ImportReport:
    """What an import read, found new or stored already, refused, and whether it wrote anything."""

    rows: int = 0
    new: int = 0
    existing: int = 0
    rejects: list[Reject] = field(default_factory=list)
    passed_on: int = 0  # rejects counted but not kept in `rejects` (handed on as they were found)
    written: bool = False
    notes: list[str] = field(default_factory=list)  # what the operator should know though nothing is wrong

    @property
    def rejected(self) -> int:
        """Rows rejected: kept in `rejects` or passed on."""
        return len(self.rejects) + self.passed_on

    def add_reject(self, reject: Reject, spool: RejectSpool | None) -> None:
        """One more bad row: the first LISTED kept in `rejects`, the rest counted; each to `spool`, if any."""
        if len(self.rejects) < LISTED:
            self.rejects.append(reject)
        else:
            self.passed_on += 1
        if spool is not None:
            spool.add(reject)

    def summary(self, noun: str) -> str:
        """One line for the operator; `noun`: what a new row makes, in the singular (`machine`)."""
        verb = "imported" if self.written else "would import (dry run)"
        return (
            f"{display.count(self.rows, 'row')}: {verb} {display.count(self.new, 'new ' + noun)}, "
            f"{self.existing} stored already, {self.rejected} rejected"
        )


class ImportRefused(errors.InvalidInput):
    """A file with bad rows, refused whole: nothing was written; `report.rejects` says the first LISTED lines
    and why, `report.rejected` how many."""

    def __init__(self, path: Path, report: ImportReport) -> None:
        lines = "; ".join(f"line {r.line}: {r.reason}" for r in report.rejects[:20])
        more = f"; and {report.rejected - 20} more" if report.rejected > 20 else ""
        super().__init__(
            f"{path}: {display.count(report.rejected, 'bad row')}, nothing imported: {lines}{more}"
        )
        self.report = report


def check_reject_file(path: Path, source: Path, *, whole: bool = True) -> None:
    """InvalidInput unless `path` can take the rejects of `source` without losing it; before the import, and
    without creating or touching it. `whole`: to be written as `write_rejects` writes it whole, beside its
    target (so that folder must take a new file even when the target exists)."""
    try:
        same = Path(path).samefile(source)
    except OSError:  # one of them does not exist (yet)
        same = False
    if same:
        raise errors.InvalidInput(f"reject file {path} is the file being imported: name another")
    target = Path(os.path.realpath(path))  # a link's target, existing or not, is what gets written
    try:
        problem = _unwritable(target) if target.exists() else None
        if problem is None and (whole or not target.exists()):
            folder = target.parent
            problem = _unwritable(folder, folder=True) if folder.exists() else errno.ENOENT
    except OSError as exc:  # exists() is False only when not there: a folder not searchable, a name too long
        problem = exc.errno
    if problem is not None:
        raise errors.InvalidInput(f"cannot write {path}: {os.strerror(problem)}")


def _unwritable(path: Path, *, folder: bool = False) -> int | None:
    """The errno writing the file `path` (`folder`: a new file in the folder `path`) would meet, or None."""
    if path.is_dir() != folder:
        return errno.ENOTDIR if folder else errno.EISDIR
    mode = os.W_OK | os.X_OK if folder else os.W_OK
    # access(2) says whether open(2) would succeed for this user (root included) and on a read-only mount.
    writable = os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)
    return None if writable else errno.EACCES


def write_rejects(
    path: Path, rejects: Iterable[Reject], columns: Iterable[str] | None = None, *, whole: bool = False
) -> None:
    """The refused rows as CSV: line, reason, then the rows' own columns (`columns`: known already, so that
    `rejects` is read once) and a row's cells past the header, if any (InvalidInput if it cannot). `whole`:
    written to a temporary file beside `path` and moved over it once complete, so that a failure leaves
    `path` as it was."""
    if columns is None:
        rejects = list(rejects)
        columns = dict.fromkeys(c for r in rejects for c in r.row if c is not None)
    columns = list(columns)
    target = Path(os.path.realpath(path)) if whole else Path(path)  # a link's target, not the link
    part = target.with_name(f".{target.name}.{os.getpid()}.part") if whole else target
    try:
        with open(part, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason", *columns])
            for r in rejects:
                writer.writerow(
                    [r.line, r.reason, *(r.row.get(c, "") for c in columns), *r.row.get(None, ())]
                )
        if whole:
            os.replace(part, target)
    except OSError as exc:
        raise errors.InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if whole:
            part.unlink(missing_ok=True)  # gone once moved


class RejectSpool:
    """Rejects kept in a temporary file as they come, for `write_rejects` once the import is done: memory
    holds their columns, not their rows."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self.columns: dict[str, None] = {}

    def add(self, reject: Reject) -> None:
        """Keep one more reject."""
        row = {k: v for k, v in reject.row.items() if k is not None}
        self.columns.update(dict.fromkeys(row))
        past = reject.row.get(None, [])  # cells past the header (`read_rows`)
        self._file.write(orjson.dumps([reject.line, reject.reason, row, past]) + b"\n")

    def write(self, path: Path, *, whole: bool = False) -> None:
        """The rejects so far as `write_rejects` writes them, to `path` (`whole`: moved there when done)."""
        self._file.seek(0)
        rejects = (
            Reject(n, why, row | ({None: past} if past else {}))
            for n, why, row, past in map(orjson.loads, self._file)
        )
        write_rejects(path, rejects, self.columns, whole=whole)
        self._file.seek(0, 2)

    def close(self) -> None:
        """Drop the temporary file."""
        self._file.close()
