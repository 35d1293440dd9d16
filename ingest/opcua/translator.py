"""OPC UA notifications (value changes, alarms, the identification) into JSON contract messages, buffered."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime

from asyncua import ua

from fleet import contract
from ingest.contract import parse_message
from ingest.opcua import metrics
from ingest.opcua.buffer import Buffer, Seen
from ingest.opcua.mapping import Mapping, Variable
from ingest.opcua.metrics import log
from ingest.opcua.publisher import Publisher
from ingest.schemas import Rejection

# OPC UA Part 5's severity bands (1-1000) onto servicecast's four levels.
SEVERITY_BANDS = ((801, "critical"), (601, "error"), (401, "warning"), (0, "info"))
IDENTIFICATION_CODE = "opcua.identification"
ZERO_TIME = datetime(1601, 1, 1, tzinfo=UTC)  # a DateTime of 0: OPC UA's "no time"
STATUS_CODE_BITS = 0xFFFF0000  # a StatusCode's code; the low 16 bits are info bits (limits, overflow)
SHOWN_CHARS = 200  # of a value's repr, kept per node to tell a new change from a repeated one, and logged


def severity(value: object) -> str:
    """The servicecast severity of an OPC UA event severity (1-1000)."""
    number = value if isinstance(value, int) else 0
    return next(level for floor, level in SEVERITY_BANDS if number >= floor)


def _ts(*candidates: object) -> datetime:
    """The first of these that is a time (OPC UA's zero time, 1601, says there is none), else now."""
    for value in candidates:
        if isinstance(value, datetime):
            value = value if value.tzinfo else value.replace(tzinfo=UTC)
            if value > ZERO_TIME:
                return value
    return datetime.now(UTC)


class Translator:
    """Turns OPC UA notifications into JSON contract messages in the buffer (asyncua calls it on its loop)."""

    def __init__(self, *, mapping: Mapping, buffer: Buffer, publisher: Publisher, nodes: dict[str, Variable]):
        self.mapping = mapping
        self.buffer = buffer
        self.publisher = publisher
        self.by_node = nodes  # resolved node id string -> its map entry
        # While the server's clock is behind the latest source time sent (stepped back), that time.
        self._behind: datetime | None = None
        self.telemetry_topic = contract.telemetry_topic(mapping.tenant, mapping.machine)
        self.events_topic = contract.events_topic(mapping.tenant, mapping.machine)
        # (source time, n) -> readings, nodes' (time, value); n > 0 holds a node's further values at that time
        self._pending: dict[tuple[datetime, int], tuple[dict[str, float | None], dict[str, Seen]]] = {}
        self._arrived: dict[str, Seen] = {}  # node -> (source time, value) of its last value in this publish
        self._flush_scheduled = False
        self._logged: set[tuple[str, str]] = set()  # (node or topic, why) already logged

    def datachange_notification(self, node, val, data) -> None:  # noqa: ANN001
        """One changed value, joined with the others of its source time in this publish, then buffered."""
        metrics.CHANGES.labels(kind="data").inc()
        key = node.nodeid.to_string()
        variable = self.by_node[key]
        value = data.monitored_item.Value
        ts = _ts(value.SourceTimestamp, value.ServerTimestamp)
        this = (ts.isoformat(), repr(val)[:SHOWN_CHARS])
        last = self.buffer.seen.get(key)
        if last is not None and last[0] == this[0] and last[1] in (None, this[1]):
            # The initial value of a new subscription (after a restart or reconnect) that was sent already:
            # its time and value (a change may keep the time: a clock in whole seconds, or standing still).
            metrics.SKIPPED.labels(reason="already_sent").inc()
            return
        if not self._good(variable, value.StatusCode):
            return
        self._check_clock(variable, ts, (self._arrived.get(key) or last or (None,))[0])
        n = 0
        while variable.sensor in self._pending.get((ts, n), ({},))[0]:
            n += 1  # a message holds one value per sensor: a second change at one time goes in the next
        readings, seen = self._pending.setdefault((ts, n), ({}, {}))
        readings[variable.sensor] = self._number(variable, val)
        seen[key] = self._arrived[key] = this
        if not self._flush_scheduled:
            # asyncua hands over every item of one publish response before the loop runs anything else.
            asyncio.get_running_loop().call_soon(self.flush)
            self._flush_scheduled = True

    def _check_clock(self, variable: Variable, ts: datetime, last: str | None) -> None:
        """Count a value older than its node's last one (the server's clock stepped back: an NTP correction, a
        PLC's clock reset); log the first of an episode, which lasts until the source times pass the latest
        sent before it. The value is sent with its own time: `seq`, not `ts`, is the idempotency key."""
        if self._behind is not None and ts > self._behind:
            log.info("the OPC UA server's source times are past %s again", self._behind.isoformat())
            self._behind = None
        if last is None or ts >= (previous := datetime.fromisoformat(last)):
            return
        metrics.STEPPED_BACK.inc()
        if self._behind is None:
            self._behind = max(self.buffer.newest_seen, previous)
            log.warning(
                "the OPC UA server's clock stepped back: %s (%s) sent a value at %s after one at %s; values "
                "are sent with their own source times (logged once until they pass %s, counted each time)",
                variable.node,
                variable.sensor,
                ts.isoformat(),
                previous.isoformat(),
                self._behind.isoformat(),
            )

    def _good(self, variable: Variable, status: ua.StatusCode | None) -> bool:
        """True for a Good value; a Bad or Uncertain one is counted, logged once per node and status, dropped.

        The contract has no quality field, so a value the server doubts would be stored as a measurement.
        """
        if status is None or status.is_good():
            return True
        name = ua.StatusCode(status.value & STATUS_CODE_BITS).name
        metrics.NOT_GOOD.labels(status=name).inc()
        self._warn_once(
            (variable.node, name),
            "%s (%s) sent a value with status %s; values whose status is not Good are not sent",
            variable.node,
            variable.sensor,
            name,
        )
        return False

    def _warn_once(
        self, key: tuple[str, str], message: str, *args: object, level: int = logging.WARNING
    ) -> None:
        """Log the first of a kind only: a node stuck on a bad value, or a clock far off, repeats at every
        change (at one a second, ~86,000 lines a day); the metrics count each one."""
        if key not in self._logged:
            self._logged.add(key)
            log.log(level, message, *args)

    def _number(self, variable: Variable, val: object) -> float | None:
        if isinstance(val, ua.LocalizedText):
            val = val.Text
        if isinstance(val, str) and val in variable.values:
            return variable.values[val]
        if isinstance(val, bool):
            return float(val)
        if isinstance(val, int | float) and val - val == 0:
            return val
        metrics.SKIPPED.labels(reason="not_a_number").inc()
        shown = repr(val)
        if len(shown) > SHOWN_CHARS:  # an array or a text of any size is a line of any size
            shown = f"{shown[:SHOWN_CHARS]}… ({len(shown)} characters)"
        self._warn_once(
            (variable.node, "not_a_number"),
            "%s (%s) sent %s, not a number the map knows; stored as null (logged once, counted each time)",
            variable.node,
            variable.sensor,
            shown,
        )
        return None

    def flush(self) -> None:
        """Buffer the readings collected in this publish, one message per source time."""
        self._flush_scheduled = False
        (pending, self._pending), (last, self._arrived) = (self._pending, {}), (self._arrived, {})
        for (ts, _), (readings, seen) in sorted(pending.items()):
            # A node keeps the time of its last value in arrival order, which a clock stepping back inside
            # one publish puts before its earlier ones: it is what the server's initial value will repeat.
            seen = {node: this for node, this in seen.items() if last[node] == this}
            self._add(
                self.telemetry_topic, lambda seq, ts=ts, r=readings: contract.encode_payload(seq, ts, r), seen
            )

    def event_notification(self, event) -> None:  # noqa: ANN001
        """An alarm or condition event becomes one servicecast event."""
        metrics.CHANGES.labels(kind="event").inc()
        fields = event.get_event_props_as_fields_dict()
        condition = text_of(fields.get("ConditionName")) or text_of(fields.get("SourceName")) or "alarm"
        code = self._code(condition)
        extra: dict[str, object] = {
            "source": text_of(fields.get("SourceName")) or None,
            "condition": condition,
        }
        active = fields.get("ActiveState/Id")
        if active is not None:
            extra["active"] = bool(getattr(active, "Value", active))
        event_id = fields.get("EventId")
        if event_id is not None and isinstance(getattr(event_id, "Value", None), bytes):
            extra["event_id"] = event_id.Value.hex()
        ts = _ts(getattr(fields.get("Time"), "Value", None))
        level = severity(getattr(fields.get("Severity"), "Value", None))
        text = text_of(fields.get("Message"))[:1024] or None

        def build(seq: int) -> bytes:
            return contract.encode_event(seq, ts, code, severity=level, text=text, **extra)

        self._add(self.events_topic, build)

    def _code(self, condition: str) -> str:
        for alarm in self.mapping.alarms:
            if condition in alarm.codes:
                return alarm.codes[condition]
        cleaned = re.sub(r"[^A-Za-z0-9._:-]", "_", condition)[:64]
        return cleaned if contract.CODE_PATTERN.match(cleaned) else "alarm"

    def identification(self, values: dict[str, object]) -> None:
        """The machine's identification as read at start, as one info event."""
        text = ", ".join(f"{k}: {v}" for k, v in values.items())[:1024] or None
        now = datetime.now(UTC)
        ident = {k: str(v) for k, v in values.items()}

        def build(seq: int) -> bytes:
            return contract.encode_event(
                seq, now, IDENTIFICATION_CODE, severity="info", text=text, identification=ident
            )

        self._add(self.events_topic, build)

    def status_change_notification(self, status) -> None:  # noqa: ANN001
        """The server ended or changed the subscription."""
        log.warning("OPC UA subscription status changed: %s", status)

    def _add(self, topic: str, build, seen: dict[str, Seen] | None = None) -> None:  # noqa: ANN001
        def checked(seq: int) -> bytes:
            payload = build(seq)
            # The ingester's own check: a message it would quarantine is refused here, where it is logged.
            parsed = parse_message(topic, payload)
            if type(parsed) is Rejection:
                raise ValueError(f"{parsed.reason}: {parsed.detail}")
            return payload

        try:
            if self.buffer.add(topic, checked, seen) is not None:
                self.publisher.wake()
        except ValueError as exc:
            metrics.SKIPPED.labels(reason="invalid").inc()
            why = str(exc).partition(":")[0]  # the contract's reason code, e.g. bad_timestamp
            self._warn_once(
                (topic, why),
                "a message for %s would be quarantined, not sent: %s (logged once per reason, counted each)",
                topic,
                exc,
                level=logging.ERROR,
            )


def text_of(value: object) -> str:
    """The text of an OPC UA value (a LocalizedText's Text), "" for none."""
    value = getattr(value, "Value", value)
    if isinstance(value, ua.LocalizedText):
        return value.Text or ""
    return "" if value is None else str(value)
