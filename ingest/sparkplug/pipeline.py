"""Sparkplug B messages through the one ingest pipeline, with node state committed beside the data."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import Connection

from fleet import sparkplug_state, telemetry
from fleet.settings import Settings
from ingest import metrics
from ingest.contract import Limits, latest_accepted, parse_body, reading_of
from ingest.pipeline import Pipeline, RawMessage, quarantine_row
from ingest.schemas import Event, Outcome, Reading, Rejection
from ingest.sparkplug.decode import DEVICE_KINDS, NODE_KINDS, Topic, decode_payload, parse_topic
from ingest.sparkplug.mapping import Mapping
from ingest.sparkplug.rows import Values
from ingest.sparkplug.session import Sessions, own

log = logging.getLogger(__name__)

NodeKey = sparkplug_state.NodeKey
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What an edge node sends: from one the map does not name, quarantined with no node state kept (a made-up id
# each time would grow sparkplug_nodes for good). Commands are other hosts' business.
_NODE_DATA = (NODE_KINDS | DEVICE_KINDS) - {"NCMD", "DCMD"}
_BIRTHS = frozenset({"NBIRTH", "DBIRTH"})  # what changes a node's declarations (sparkplug_state.BIRTH_KEYS)


def _check(
    item: Values | tuple[str, dict], limits: Limits, now: datetime, latest: datetime
) -> Reading | Event | Rejection:
    """What the contract makes of one translated message: values are checked as they are (no JSON text, no ISO
    time to parse), an event as the dict JSON parsing would give."""
    if type(item) is Values:
        ts = _EPOCH + timedelta(milliseconds=item.ms)
        return reading_of(
            item.topic, item.seq, ts, item.readings, extra=item.extra, limits=limits, latest=latest
        )
    return parse_body(item[0], item[1], limits=limits, now=now)


class SparkplugPipeline:
    """Same interface as `Pipeline` (`engine`, `store`), so the batch writer and its acks work unchanged."""

    # Node states kept in memory between batches; past it only the last batch's stay (the others are in the
    # store, read again when their node sends), so that a flood of node names cannot grow the writer.
    state_cache = 10_000

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        mapping: Mapping,
        host_id: str,
        on_rebirth: Callable[[str, str], None] | None = None,
        rebirth_interval_s: float = Settings.model_fields["sparkplug_rebirth_interval_s"].default,
    ) -> None:
        self.pipeline = pipeline
        self.engine = pipeline.engine
        self.mapping = mapping
        self.host_id = host_id
        self.on_rebirth = on_rebirth
        self.sessions = Sessions(mapping, rebirth_interval_ms=int(rebirth_interval_s * 1000))
        self.rebirths_requested = 0
        self._states: dict[NodeKey, dict | None] = {}
        self._logged: set[tuple[NodeKey, str]] = set()  # (node, cause) of ignored NDEATHs already logged

    def store(self, messages: Sequence[RawMessage]) -> tuple[Outcome, list[Rejection | None]]:
        """Decode, apply to node states, write values, rejections and states in one transaction."""
        decoded = [(self._parse(topic), topic, payload) for topic, payload, _ in messages]
        self._load({(t.group, t.edge_node) for t, _, _ in decoded if type(t) is not Rejection and t.group})
        # Each node's state is copied once per batch and changed in place by the session step; a batch that
        # fails leaves the committed ones intact.
        working = dict(self._states)
        touched: set[NodeKey] = set()
        born: set[NodeKey] = set()  # nodes whose births' declarations this batch changed
        rebirths: list[NodeKey] = []
        ignored_deaths: list[tuple[NodeKey, str, str]] = []
        # What the messages become in the contract: (topic, no payload, received at), their values or event
        # bodies (made JSON text only for a quarantine row), and what the contract's checks made of each.
        translated: list[RawMessage] = []
        bodies: list[Values | tuple[str, dict]] = []
        parsed: list[Reading | Event | Rejection] = []
        now, limits = datetime.now(UTC), self.pipeline.limits
        latest = latest_accepted(now, limits)
        latest_ms, now_ms = int(latest.timestamp() * 1000), int(now.timestamp() * 1000)
        rejected: list[dict] = []
        results: list[Rejection | None] = []
        for (topic, text, payload), (_, _, received) in zip(decoded, messages, strict=True):
            rejection = topic if type(topic) is Rejection else None
            if rejection is None and topic.kind != "STATE":  # STATE is JSON, and no data
                body = decode_payload(payload)
                if type(body) is Rejection:
                    rejection = body
                else:
                    node = (topic.group, topic.edge_node)
                    if node not in touched:
                        touched.add(node)
                        working[node] = own(working.get(node))
                    if topic.kind in _BIRTHS:
                        born.add(node)
                    working[node], out = self.sessions.handle(
                        working[node], topic, text, *body, latest_ms=latest_ms, now_ms=now_ms
                    )
                    if out.rebirth:
                        rebirths.append(node)
                    if out.ignored_death is not None:
                        ignored_deaths.append((node, *out.ignored_death))
                    rejection = out.rejection
                    for item in out.messages:
                        parsed.append(_check(item, limits, now, latest))
                        translated.append((item[0], b"", received))
                        bodies.append(item)
            results.append(rejection)
            if rejection is not None:
                at = datetime.fromtimestamp(received, UTC)
                # Births of any size are read; of a refused payload past the JSON limit a prefix is kept.
                keep = self.pipeline.keep_bytes if len(payload) > limits.max_bytes else None
                rejected.append(quarantine_row(text, payload, rejection, at, keep_bytes=keep))

        def also(conn: Connection) -> None:
            sparkplug_state.save(conn, self.host_id, {k: working[k] for k in touched if working[k]}, born)
            telemetry.insert_quarantine(conn, rejected)

        def payload_of(i: int) -> bytes:
            item = bodies[i]
            return orjson.dumps(item.body() if type(item) is Values else item[1])

        outcome, _ = self.pipeline.store(translated, also=also, parsed=parsed, payload_of=payload_of)
        self._states = working if len(working) <= self.state_cache else {k: working[k] for k in touched}
        for reason in (r.reason for r in results if r is not None):
            outcome.add_reason(reason)
        outcome.quarantined += len(rejected)
        self._note_ignored_deaths(ignored_deaths)
        # The host asks for them once the batch is committed (its writer may run in another process).
        outcome.rebirths += rebirths
        for group, edge_node in rebirths:
            self.rebirths_requested += 1
            if self.on_rebirth is not None:
                self.on_rebirth(group, edge_node)
        return outcome, results

    def _parse(self, text: str) -> Topic | Rejection:
        """The topic's parts; a node the map does not name is refused before any state is made for it."""
        topic = parse_topic(text)
        if (
            type(topic) is Topic
            and topic.kind in _NODE_DATA
            and not self.mapping.knows(topic.group, topic.edge_node)
        ):
            why = f"{topic.kind} from {topic.group}/{topic.edge_node}, an edge node the map does not name"
            return Rejection("sparkplug_unknown_node", why)
        return topic

    def _note_ignored_deaths(self, deaths: list[tuple[NodeKey, str, str]]) -> None:
        """Count committed NDEATHs that ended no session; log each node's cause once, so that a storm of them
        from one node is one line (the set is bounded like the state cache)."""
        for node, cause, detail in deaths:
            metrics.SPARKPLUG_IGNORED_DEATHS.labels(cause).inc()
            if (node, cause) not in self._logged:
                if len(self._logged) >= self.state_cache:
                    self._logged.clear()
                self._logged.add((node, cause))
                log.warning("ignored %s (logged once per node and cause)", detail)

    def _load(self, keys: set[NodeKey]) -> None:
        missing = keys - self._states.keys()
        if missing:
            with self.engine.connect() as conn:
                found = sparkplug_state.load(conn, self.host_id, missing)
            self._states.update({k: found.get(k) for k in missing})
