"""Payload contract v1: one function turns a raw message into a reading or a rejection."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from fleet import contract, display
from fleet.type_checks import SEVERITIES
from ingest import json_values
from ingest.schemas import Event, Reading, Rejection

KNOWN_FIELDS = frozenset({"v", "seq", "ts", "readings", "fw"})
EVENT_FIELDS = frozenset({"v", "seq", "ts", "code", "severity", "text"})
MAX_SEQ = 2**63 - 1
MAX_FW = 64
MAX_EVENT_TEXT = 1024
FLOAT_MAX = sys.float_info.max
# The ingester writes what it accepted through orjson, which writes no JSON nested deeper (it reads 1024).
MAX_DEPTH = 254
# Topics and sensor names already checked; bounded so that a flood of new names cannot grow them forever.
_CACHE_LIMIT = 100_000
_END = datetime.max.replace(tzinfo=UTC)
_ID_RULE = "is not 1 to {} of [A-Za-z0-9._-] beginning with a letter or digit"
_KINDS = frozenset({contract.TOPIC_LEAF, contract.EVENTS_LEAF})
_topics: dict[str, tuple[str, str, str]] = {}
_sensor_names: set[str] = set()


@dataclass(frozen=True, slots=True)
class Limits:
    """What the ingester accepts beyond the shape of v1: sizes, counts and a plausible time range."""

    max_bytes: int = 65_536
    max_readings: int = 256
    future_margin: timedelta = timedelta(minutes=5)
    ts_floor: datetime = datetime(2000, 1, 1, tzinfo=UTC)

    @classmethod
    def from_settings(cls, settings) -> Limits:
        """The limits of SERVICECAST_INGEST_*."""
        return cls(
            max_bytes=settings.ingest_max_payload_bytes,
            max_readings=settings.ingest_max_readings,
            future_margin=timedelta(
                seconds=min(settings.ingest_future_margin_s, timedelta.max.days * 86_400)
            ),
            ts_floor=settings.ingest_ts_floor,
        )


DEFAULT_LIMITS = Limits()


def parse_topic(topic: str) -> tuple[str, str, str] | Rejection:
    """`fleet/{tenant}/{machine}/telemetry` or `…/events` → (tenant, machine, kind)."""
    known = _topics.get(topic)
    if known is not None:
        return known
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != contract.TOPIC_ROOT or parts[3] not in _KINDS:
        return Rejection(
            "bad_topic", f"topic {topic[:200]!r} is not fleet/{{tenant}}/{{machine}}/telemetry or …/events"
        )
    tenant, machine = parts[1], parts[2]
    # fullmatch: the patterns end in `$`, which `match` lets pass before a trailing line break.
    if not contract.TENANT_PATTERN.fullmatch(tenant):
        return Rejection("bad_topic", f"tenant id {tenant[:80]!r} {_ID_RULE.format(64)}")
    if not contract.MACHINE_PATTERN.fullmatch(machine):
        return Rejection("bad_topic", f"machine id {machine[:140]!r} {_ID_RULE.format(128)}")
    if len(_topics) >= _CACHE_LIMIT:
        _topics.clear()
    _topics[topic] = tenant, machine, parts[3]
    return tenant, machine, parts[3]


def parse_ts(
    raw: object, limits: Limits = DEFAULT_LIMITS, latest: datetime | None = None
) -> datetime | Rejection:
    """An ISO 8601 timestamp with an offset (or Z), from the floor to `latest` → aware datetime in UTC."""
    if type(raw) is not str:
        return Rejection("wrong_type", f"ts must be an ISO 8601 string, got {type(raw).__name__}")
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        return Rejection("bad_timestamp", f"ts {raw[:60]!r} is not ISO 8601")
    if ts.tzinfo is None:
        return Rejection("bad_timestamp", f"ts {raw[:60]!r} has no UTC offset (end it with Z)")
    return _in_range(ts, limits, latest, raw)


def _in_range(
    ts: datetime, limits: Limits, latest: datetime | None, raw: str | None = None
) -> datetime | Rejection:
    """An aware timestamp from the floor to `latest` (now plus the margin by default), in UTC."""
    # Compared before any conversion: converting year 1 or 9999 with an offset to UTC overflows.
    if ts < limits.ts_floor:
        return Rejection(
            "bad_timestamp", f"ts {_shown(ts, raw)} is before {display.to_the_second(limits.ts_floor)}"
        )
    if latest is None:
        latest = latest_accepted(datetime.now(UTC), limits)
    if ts > latest:
        return Rejection(
            "bad_timestamp",
            f"ts {_shown(ts, raw)} is in the future "
            f"(later than {display.to_the_second(latest.replace(microsecond=0))} by our clock)",
        )
    return ts if ts.tzinfo is UTC else ts.astimezone(UTC)


def _shown(ts: datetime, raw: str | None) -> str:
    """A refused ts as the machine sent it (its text, quoted), or as people read times if it sent no text."""
    return repr(raw[:60]) if raw is not None else display.to_the_second(ts)


def latest_accepted(now: datetime, limits: Limits) -> datetime:
    """The latest `ts` accepted at `now`; a margin reaching past year 9999 means no limit."""
    try:
        return now + limits.future_margin
    except OverflowError:
        return _END


def _check_readings(raw: object, max_readings: int) -> dict | Rejection:
    if type(raw) is not dict:
        return Rejection("wrong_type", f"readings must be an object, got {type(raw).__name__}")
    if len(raw) > max_readings:
        return Rejection("bad_value", f"readings has {len(raw)} sensors, the limit is {max_readings}")
    names = _sensor_names
    for name, value in raw.items():
        if name not in names:
            if not contract.SENSOR_PATTERN.match(name):
                return Rejection("bad_value", f"sensor name {name[:80]!r} is not 1 to 64 of [A-Za-z0-9_]")
            if len(names) >= _CACHE_LIMIT:
                names.clear()
            names.add(name)
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # inf - inf and nan - nan are nan
                return Rejection("bad_value", f"readings.{name} is {value}, not a finite number")
        elif kind is int:
            if not -FLOAT_MAX <= value <= FLOAT_MAX:
                return Rejection("bad_value", f"readings.{name} is an integer outside the float range")
        elif value is not None:
            shown = f" {value[:40]!r}" if kind is str else ""  # "61,5" or "NaN" says what to fix
            return Rejection("wrong_type", f"readings.{name} must be a number, got {kind.__name__}{shown}")
    return raw


def _unicode_problem(payload: bytes, body: object) -> Rejection | None:
    """A NUL or a lone surrogate from a JSON escape: text neither store can hold."""
    if b"\\u0000" in payload and json_values.has_nul(body):
        # PostgreSQL text and JSONB cannot hold NUL; refusing here keeps one message from blocking a batch.
        return Rejection("bad_value", "payload contains a NUL character (\\u0000)")
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        return Rejection("bad_value", f"payload has a string that is not valid UTF-8: {exc.reason}")
    except RecursionError:
        return Rejection("bad_value", "payload is nested too deeply")
    return None


def _depth_problem(payload: bytes, body: object) -> Rejection | None:
    """A body nested deeper than MAX_DEPTH, which could be read but not written back."""
    if payload.count(b"[") + payload.count(b"{") <= MAX_DEPTH:
        return None  # too few brackets to nest that deep: the usual payload costs two counts
    deepest, stack = 0, [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if type(value) is dict:
            value = value.values()
        elif type(value) is not list:
            continue
        deepest = max(deepest, depth)
        stack.extend((item, depth + 1) for item in value)
    if deepest > MAX_DEPTH:
        return Rejection("bad_value", f"payload is nested {deepest} levels deep, the limit is {MAX_DEPTH}")
    return None


def _shape(body: object) -> Rejection | None:
    """An object of contract version 1, or why not: what every message kind checks first."""
    if type(body) is not dict:
        return Rejection("wrong_type", f"payload must be a JSON object, got {type(body).__name__}")
    version = body.get("v", contract.PAYLOAD_VERSION)
    if version != contract.PAYLOAD_VERSION or isinstance(version, bool):
        return Rejection(
            "unsupported_version", f"payload version {repr(version)[:40]} is not supported (expected 1)"
        )
    return None


def check_seq(seq: object) -> int | Rejection:
    """A seq as an integer in 0..MAX_SEQ, or why not; a float or a text is named with its value."""
    if type(seq) is not int:
        kind = type(seq)
        shown = f" {seq!r}" if kind is float else f" {seq[:40]!r}" if kind is str else ""
        return Rejection("wrong_type", f"seq must be an integer, got {kind.__name__}{shown}")
    if not 0 <= seq <= MAX_SEQ:
        return Rejection("bad_value", f"seq {str(seq)[:40]} is outside 0..2^63-1")
    return seq


def _optional_text(body: dict, name: str, limit: int) -> str | None | Rejection:
    value = body.get(name)
    if value is not None:
        if type(value) is not str:
            return Rejection("wrong_type", f"{name} must be a string, got {type(value).__name__}")
        if len(value) > limit:
            return Rejection("bad_value", f"{name} has {len(value)} characters, the limit is {limit}")
    return value


def _common_head(
    body: object, payload_field: str, limits: Limits, latest: datetime | None
) -> tuple[int, datetime, object] | Rejection:
    """What both message kinds share: an object with `v`, a valid `seq` and `ts`, and their own field."""
    problem = _shape(body)
    if problem is not None:
        return problem
    try:
        seq, ts, own = body["seq"], body["ts"], body[payload_field]
    except KeyError as exc:
        return Rejection("missing_field", f"{exc.args[0]} is required")
    seq = check_seq(seq)
    if type(seq) is Rejection:
        return seq
    ts = parse_ts(ts, limits, latest)
    if type(ts) is Rejection:
        return ts
    return seq, ts, own


def parse_event(
    body: object, limits: Limits = DEFAULT_LIMITS, latest: datetime | None = None
) -> tuple[int, datetime, str, str | None, str | None, dict | None] | Rejection:
    """Check a decoded JSON body against the events contract v1: seq, ts, code, optional severity and text."""
    head = _common_head(body, "code", limits, latest)
    if type(head) is Rejection:
        return head
    seq, ts, code = head
    if type(code) is not str:
        return Rejection("wrong_type", f"code must be a string, got {type(code).__name__}")
    if not contract.CODE_PATTERN.match(code):
        return Rejection("bad_value", f"code {code[:80]!r} is not {contract.CODE_RULE}")
    severity = body.get("severity")
    if severity is not None and severity not in SEVERITIES:
        allowed = ", ".join(SEVERITIES)
        return Rejection("bad_value", f"severity {str(severity)[:40]!r} is not one of {allowed}")
    text = _optional_text(body, "text", MAX_EVENT_TEXT)
    if type(text) is Rejection:
        return text
    extra = {k: v for k, v in body.items() if k not in EVENT_FIELDS} or None
    return seq, ts, code, severity, text, extra


def parse_payload(
    body: object, limits: Limits = DEFAULT_LIMITS, latest: datetime | None = None
) -> tuple[int, datetime, dict, str | None, dict | None] | Rejection:
    """Check a decoded JSON body against contract v1."""
    head = _common_head(body, "readings", limits, latest)
    if type(head) is Rejection:
        return head
    seq, ts, readings = head
    readings = _check_readings(readings, limits.max_readings)
    if type(readings) is Rejection:
        return readings
    fw = _optional_text(body, "fw", MAX_FW)
    if type(fw) is Rejection:
        return fw
    known = 3 + ("v" in body) + (fw is not None or "fw" in body)
    extra = {k: v for k, v in body.items() if k not in KNOWN_FIELDS} if len(body) > known else None
    return seq, ts, readings, fw, extra


def parse_message(
    topic: str, payload: bytes, *, limits: Limits = DEFAULT_LIMITS, now: datetime | None = None
) -> Reading | Event | Rejection:
    """Topic and raw bytes → a Reading or an Event, or a Rejection with a precise reason; never raises."""
    where = parse_topic(topic)
    if type(where) is Rejection:
        return where
    if len(payload) > limits.max_bytes:
        return Rejection("too_large", f"payload has {len(payload)} bytes, the limit is {limits.max_bytes}")
    try:
        # orjson refuses everything the store cannot hold as JSON (NaN, numbers beyond a double, lone
        # surrogates, invalid UTF-8, nesting beyond 1024): those take the slower path that says why.
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return _parse_strictly(where, payload, limits, now, exc)
    if b"\\u0000" in payload and json_values.has_nul(body):
        # PostgreSQL text and JSONB cannot hold NUL; refusing here keeps one message from blocking a batch.
        return Rejection("bad_value", "payload contains a NUL character (\\u0000)")
    problem = _depth_problem(payload, body)
    if problem is not None:
        return problem
    result = _reading(where, body, limits, now)
    if type(result) is not Rejection and result.extra is not None and json_values.may_be_wide(payload):
        return json_values.wide_int(payload, skip="readings" if type(result) is Reading else None) or result
    return result


def parse_body(
    topic: str, body: object, *, limits: Limits = DEFAULT_LIMITS, now: datetime | None = None
) -> Reading | Event | Rejection:
    """Topic and an already-decoded body (as JSON parsing gives it) → Reading, Event or Rejection.

    The same checks as `parse_message` after its JSON parse, for bodies built by a protocol bridge.
    """
    where = parse_topic(topic)
    if type(where) is Rejection:
        return where
    return _reading(where, body, limits, now)


def reading_of(
    topic: str,
    seq: int,
    ts: datetime,
    readings: dict,
    *,
    extra: dict | None = None,
    limits: Limits = DEFAULT_LIMITS,
    latest: datetime | None = None,
) -> Reading | Rejection:
    """A telemetry reading from values a protocol bridge decoded, with no JSON text to parse: `parse_body`'s
    checks of the topic, seq, ts (an aware datetime here, up to `latest`) and readings."""
    where = parse_topic(topic)
    if type(where) is Rejection:
        return where
    if where[2] != contract.TOPIC_LEAF:
        return Rejection("bad_topic", f"topic {topic[:200]!r} is not a telemetry topic")
    checked_seq = check_seq(seq)
    if type(checked_seq) is Rejection:
        return checked_seq
    checked_ts = _in_range(ts, limits, latest)
    if type(checked_ts) is Rejection:
        return checked_ts
    checked = _check_readings(readings, limits.max_readings)
    if type(checked) is Rejection:
        return checked
    return Reading(where[0], where[1], checked_seq, checked_ts, checked, None, extra)


def _reading(
    where: tuple[str, str, str], body: object, limits: Limits, now: datetime | None
) -> Reading | Event | Rejection:
    latest = None if now is None else latest_accepted(now, limits)
    if where[2] == contract.EVENTS_LEAF:
        parsed = parse_event(body, limits, latest)
        return parsed if type(parsed) is Rejection else Event(where[0], where[1], *parsed)
    parsed = parse_payload(body, limits, latest)
    if type(parsed) is Rejection:
        return parsed
    seq, ts, readings, fw, extra = parsed
    return Reading(where[0], where[1], seq, ts, readings, fw, extra)


def _parse_strictly(
    where: tuple[str, str, str], payload: bytes, limits: Limits, now: datetime | None, fast_error: Exception
) -> Rejection:
    """The precise reason for a payload the fast parser refused."""
    try:
        body = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return Rejection("malformed_json", f"payload is not UTF-8: {exc.reason} at byte {exc.start}")
    except (ValueError, RecursionError) as exc:
        return Rejection("malformed_json", f"payload is not JSON: {str(exc)[:200]}")
    problem = _unicode_problem(payload, body) if b"\\u" in payload else None
    if problem is None:
        problem = _reading(where, body, limits, now)
    if type(problem) is Rejection:
        return problem
    # Valid for Python's parser, yet NaN, an infinity or a number beyond a double sits outside `readings`.
    return Rejection("bad_value", f"payload has a value the store cannot hold: {str(fast_error)[:200]}")
