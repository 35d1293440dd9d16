"""Readings and events from a CSV file, each row as the message a machine would send, through the pipeline."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import Engine

from fleet import contract, csv_import, display, errors, parquet_bounds, registration
from fleet.csv_import import ColumnMap, ImportReport, Reject
from ingest import event_slots
from ingest.contract import MAX_SEQ, Limits, check_seq, parse_message
from ingest.pipeline import Pipeline, RawMessage
from ingest.schemas import Event, Outcome, Reading, Rejection
from ingest.writer import UNAVAILABLE

KINDS = ("telemetry", "events")
# Bytes of messages a batch holds at most: rows near the line bound (1 MB) must not make a batch of
# `batch_size` of them (a message costs several times its size until it is stored).
BATCH_BYTES = 8 * 2**20
# Tries of a batch the database refuses (a session the server cut, a failover) before the import gives up.
TRIES = 5
# A row: line, cells, message, why it is refused before the contract looks at it (None: it is not), and
# whether its seq is to be placed (`event_slots`: an event the file gives no seq).
_Row = tuple[int, dict, RawMessage, Rejection | None, bool]
# The fields a file must have and the fields the import reads (`csv_import.check_header`).
_Header = tuple[tuple[str, ...], tuple[str, ...]]

log = logging.getLogger(__name__)


def import_file(
    *,
    engine: Engine,
    path: Path,
    mapping: ColumnMap,
    batch_size: int = 5000,
    limits: Limits | None = None,
    max_line: int = csv_import.MAX_LINE,
    on_reject: Callable[[Reject], None] | None = None,
) -> ImportReport:
    """Store FILE's rows as telemetry or events (`mapping.kind`); a bad row is quarantined and reported.

    The file is read `batch_size` rows (or BATCH_BYTES of messages) at a time (a Parquet file in batches of
    `batch_size`), a row with a line
    or value longer than `max_line` characters refused (a line unread). Given `on_reject`, each bad row goes
    there once its batch is stored and is only counted in the report: memory does not grow with the file."""
    kind = mapping.kind or "telemetry"
    if kind not in KINDS:
        raise errors.InvalidInput(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    csv_import.zone(mapping.timezone)  # an unknown one is refused before the first batch is stored
    required = ("machine", "ts") + (("code",) if kind == "events" else ())
    if mapping.tenant is None:
        required = ("tenant", *required)
    fields = csv_import.TELEMETRY_FIELDS + (csv_import.EVENT_FIELDS if kind == "events" else ())
    pipeline = Pipeline(engine=engine, **({"limits": limits} if limits else {}))
    report = ImportReport(written=True)
    batch: list[_Row] = []
    size = 0  # bytes of the batch's messages
    try:
        for row in _messages(_rows(path, mapping, (required, fields), max_line, batch_size), mapping, kind):
            batch.append(row)
            size += len(row[2][1])
            if len(batch) >= batch_size or size >= BATCH_BYTES:
                _store(pipeline, batch, report, on_reject)
                batch, size = [], 0
    except errors.InvalidInput as exc:  # met past the first row (a file changed as it was read)
        raise errors.InvalidInput(f"{exc}; {_stored(report.rows)}") from None
    _store(pipeline, batch, report, on_reject)
    return report


def _stored(rows: int) -> str:
    """What an import stopped by a bad file stored of it, `rows` rows in batches."""
    if not rows:
        return "nothing of it is stored"
    first = "first row of the file is" if rows == 1 else f"first {display.count(rows, 'row')} of the file are"
    return f"the {first} stored (the same import again stores none twice)"


def _store(
    pipeline: Pipeline, batch: list[_Row], report: ImportReport, on_reject: Callable[[Reject], None] | None
) -> None:
    if not batch:
        return
    for tries in range(1, TRIES + 1):
        try:
            outcome, results = _write(pipeline, batch)
            break
        except UNAVAILABLE as exc:
            if tries == TRIES:
                exc.add_note(
                    f"the rows before line {batch[0][0]} are stored; the same import again stores none twice"
                )
                raise
            log.warning("database refused a batch (try %d of %d): %s", tries, TRIES, str(exc).split("\n")[0])
            pipeline.engine.dispose()  # a new session: the server may have cut them all (restart, failover)
            time.sleep(0.2 * 2**tries)
    report.rows += len(batch)
    report.new += outcome.stored
    report.existing += outcome.duplicates
    for (line, row, _, _, _), result in zip(batch, results, strict=True):
        if type(result) is not Rejection:
            continue
        reject = Reject(line, f"{result.reason}: {result.detail}", row)
        if on_reject is None:
            report.rejects.append(reject)
        else:
            on_reject(reject)
            report.passed_on += 1


def _write(pipeline: Pipeline, batch: list[_Row]) -> tuple[Outcome, list[Reading | Event | Rejection]]:
    """Check, place and store one batch in one transaction (`Pipeline.store`)."""
    now = datetime.now(UTC)
    parsed = [
        bad or parse_message(topic, payload, limits=pipeline.limits, now=now)
        for _, _, (topic, payload, _), bad, _ in batch
    ]
    messages = [message for _, _, message, _, _ in batch]
    unplaced = {i: p for i, (p, r) in enumerate(zip(parsed, batch, strict=True)) if r[4] and type(p) is Event}
    for i, placed in (event_slots.place(pipeline.engine, unplaced) if unplaced else {}).items():
        parsed[i] = placed
        if type(placed) is Event and placed.seq != unplaced[i].seq:  # what a replay of its quarantine reads
            topic, payload, received = messages[i]
            messages[i] = topic, orjson.dumps(orjson.loads(payload) | {"seq": placed.seq}), received
    return pipeline.store(messages, parsed=parsed)


def _messages(rows: Iterator[tuple[int, dict]], mapping: ColumnMap, kind: str) -> Iterator[_Row]:
    """Each row as (line, row, raw message, None), the message's JSON payload for the contract to check;
    a row refused before (fields that do not match the header, tenants that disagree, a time it cannot
    read) with its Rejection."""
    own = {mapping.column(name) for name in (*csv_import.TELEMETRY_FIELDS, *csv_import.EVENT_FIELDS)}
    last: dict[tuple[str, str], datetime] = {}  # each machine's time in its row before
    received = time.time()
    topic_of = contract.events_topic if kind == "events" else contract.telemetry_topic
    for line, row in rows:
        tenant = mapping.tenant or csv_import.text(row, mapping, "tenant")
        machine = csv_import.text(row, mapping, "machine")
        topic = topic_of(tenant, machine)
        try:
            csv_import.check_row(row)
            _check_unnamed(row)
            csv_import.tenant(row, mapping)
        except ValueError as exc:  # kept as the cells it has: a replay must not store shifted values
            cells = [v for k, v in row.items() if k is not None and v is not None] + row.get(None, [])
            yield line, row, (topic, orjson.dumps(cells), received), Rejection("bad_row", str(exc)), False
            continue
        problem = registration.key_problem(tenant, machine)  # in registration's words, not the topic's
        bad = Rejection("bad_topic", problem) if problem else None
        raw_ts = csv_import.text(row, mapping, "ts")
        try:
            ts: datetime | None = csv_import.parse_time(raw_ts, mapping, after=last.get((tenant, machine)))
            last[(tenant, machine)] = ts
        except ValueError as exc:
            ts, bad = None, bad or Rejection("bad_timestamp", str(exc))  # the message keeps the raw text
        body: dict = {"v": contract.PAYLOAD_VERSION, "seq": _seq(row, mapping), "ts": _ts_text(ts, raw_ts)}
        derived = body["seq"] is None
        if derived:
            body["seq"] = _derived_seq(ts, kind)
        elif bad is None and _out_of_range(body["seq"]):
            bad = Rejection("bad_value", f"seq {body['seq'][:40]} is outside 0..2^63-1")
        elif type(body["seq"]) is float:  # JSON holds no NaN: the contract judges it here, the text goes on
            bad = bad or check_seq(body["seq"])
            body["seq"] = csv_import.text(row, mapping, "seq")
        if kind == "events":
            body["code"] = csv_import.text(row, mapping, "code")
            for name in ("severity", "text"):
                if value := csv_import.text(row, mapping, name):
                    body[name] = value
        else:
            body["readings"] = {k: _number(v) for k, v in row.items() if k not in own and k.strip()}
        yield line, row, (topic, _payload(body), received), bad, derived and kind == "events"


def _payload(body: dict) -> bytes:
    """The row's message as a machine would send it: a NaN or infinite reading as JSON's `NaN` or `Infinity`
    (orjson would write null), for the contract to refuse as it refuses that value from MQTT."""
    readings = body.get("readings")
    if readings and any(type(v) is float and not math.isfinite(v) for v in readings.values()):
        return json.dumps(body, allow_nan=True).encode()
    return orjson.dumps(body)


def _check_unnamed(row: dict) -> None:
    """ValueError for a value under a nameless column; an empty one (a trailing separator) is ignored."""
    if any(not k.strip() and v.strip() for k, v in row.items()):
        raise ValueError("a value under a column without a name")


def _rows(
    path: Path, mapping: ColumnMap, header: _Header, max_line: int, chunk: int
) -> Iterator[tuple[int, dict]]:
    """(line, {column: text}) of a CSV file, or (row number from 1, …) of a Parquet file, `chunk` rows at a
    time; a Parquet row with a value longer than `max_line` characters, or in a row group whose footer shows a
    decompression bomb (`parquet_bounds.bomb`, left unread), is `csv_import.Unread`."""
    required, fields = header
    if Path(path).suffix.lower() != ".parquet":
        yield from csv_import.read_rows(path, mapping, required=required, fields=fields, max_line=max_line)
        return
    from pyarrow import ArrowException, parquet  # only an import of Parquet pays for loading pyarrow

    try:
        table = parquet.ParquetFile(path)
        csv_import.check_header(path, table.schema_arrow.names, mapping, required=required, fields=fields)
        groups = range(table.metadata.num_row_groups)
        bombs = {g: why for g in groups if (why := parquet_bounds.bomb(table.metadata, [g]))}
        sound = [g for g in groups if g not in bombs]
        for _ in table.iter_batches(batch_size=chunk, row_groups=sound):
            pass  # every page decoded once before the first row is stored: a corrupt file stores nothing
    except (OSError, ArrowException) as exc:
        raise errors.InvalidInput(f"cannot read {path} as Parquet: {exc}") from None
    number = 0
    long = csv_import.Unread(f"a value longer than {max_line} characters")
    for g in groups:
        if g in bombs:  # refused from the footer, unread: its rows are numbered, not decoded
            unread = csv_import.Unread(f"{bombs[g]} (a decompression bomb): not read")
            for _ in range(table.metadata.row_group(g).num_rows):
                number += 1
                yield number, unread
            continue
        for batch in table.iter_batches(batch_size=chunk, row_groups=[g]):
            for row in _pylist(batch):
                number += 1
                if isinstance(row, csv_import.Unread):
                    yield number, row
                    continue
                cells = {k: _cell_text(v) for k, v in row.items()}
                yield number, long if any(len(v) > max_line for v in cells.values()) else cells


def _pylist(batch) -> list[dict]:
    """The rows of a Parquet batch; one with text that is not UTF-8 (the format does not check it, a writer
    may not) as `csv_import.Unread`, so that the rows around it are still read."""
    try:
        return batch.to_pylist()
    except UnicodeDecodeError:
        pass
    rows: list[dict] = []
    for i in range(batch.num_rows):
        try:
            rows.append(batch.slice(i, 1).to_pylist()[0])
        except UnicodeDecodeError as exc:
            name = next((n for n in batch.schema.names if _undecodable(batch.column(n).slice(i, 1))), "?")
            rows.append(csv_import.Unread(f"column {name!r} holds text that is not UTF-8 ({exc.reason})"))
    return rows


def _undecodable(column) -> bool:
    try:
        column.to_pylist()
    except UnicodeDecodeError:
        return True
    return False


def _cell_text(value: object) -> str:
    """A Parquet value as the text a CSV cell would hold, so that both take one path."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value) if type(value) is float else str(value)


def _seq(row: dict, mapping: ColumnMap) -> object:
    value = csv_import.text(row, mapping, "seq")
    if not value:
        return None
    if "_" in value:  # Python reads 1_0 as 10: no file means that
        return value
    try:
        seq = int(value)
    except ValueError:
        try:
            return float(value)  # 5.0, NaN: a float (Parquet's, or a CSV's text), as the contract names it
        except ValueError:
            return value  # the contract refuses it as wrong_type, with the line
    # JSON is written with 64-bit integers at most: a larger one goes as text, refused as bad_value below
    return seq if -MAX_SEQ <= seq <= MAX_SEQ else value


def _out_of_range(seq: object) -> bool:
    """A seq the file gives as a whole number too large for `_seq` to keep as one."""
    return isinstance(seq, str) and seq.lstrip("+-").isdigit()


def _derived_seq(ts: datetime | None, kind: str) -> int:
    """Milliseconds since 1970 (telemetry), or an event's first slot at its millisecond (`event_slots`)."""
    if ts is None:
        return 0
    if kind == "events":
        return event_slots.first_slot(ts)
    return int((ts - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)


def _ts_text(ts: datetime | None, raw: str) -> str:
    if ts is None:
        return raw
    return ts.isoformat().replace("+00:00", "Z")


def _number(value: str | None) -> object:
    """A cell as a reading: a number (NaN and infinities too: `_payload`), None when empty, the text itself
    when it is not a number."""
    if value is None or not value.strip():
        return None
    if "_" in value:  # Python reads 1_5 as 15: no file means that
        return value.strip()
    try:
        return float(value)
    except ValueError:
        return value.strip()
