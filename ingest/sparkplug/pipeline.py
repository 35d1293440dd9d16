"""Sparkplug B messages through the one ingest pipeline, with node state committed beside the data."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection

from fleet import sparkplug_state, telemetry
from ingest.pipeline import Pipeline, RawMessage, quarantine_row
from ingest.schemas import Outcome, Rejection
from ingest.sparkplug.decode import decode_payload, parse_topic
from ingest.sparkplug.mapping import Mapping
from ingest.sparkplug.session import Sessions

log = logging.getLogger(__name__)

NodeKey = sparkplug_state.NodeKey


class SparkplugPipeline:
    """Same interface as `Pipeline` (`engine`, `store`), so the batch writer and its acks work unchanged."""

    def __init__(
        self, *, pipeline: Pipeline, mapping: Mapping, host_id: str, on_rebirth: Callable[[str, str], None]
    ) -> None:
        self.pipeline = pipeline
        self.engine = pipeline.engine
        self.host_id = host_id
        self.on_rebirth = on_rebirth
        self.sessions = Sessions(mapping)
        self.rebirths_requested = 0
        self._states: dict[NodeKey, dict | None] = {}

    def store(self, messages: Sequence[RawMessage]) -> tuple[Outcome, list[Rejection | None]]:
        """Decode, apply to node states, write values, rejections and states in one transaction."""
        decoded = [(parse_topic(topic), topic, payload) for topic, payload, _ in messages]
        self._load({(t.group, t.edge_node) for t, _, _ in decoded if type(t) is not Rejection and t.group})
        # States are replaced, never changed in place: a batch that fails leaves the committed ones intact.
        working = dict(self._states)
        touched: set[NodeKey] = set()
        rebirths: list[NodeKey] = []
        json_messages: list[RawMessage] = []
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
                    state, out = self.sessions.handle(working.get(node), topic, text, *body)
                    if state is not working.get(node):
                        working[node] = state
                        touched.add(node)
                    if out.rebirth:
                        rebirths.append(node)
                    rejection = out.rejection
                    json_messages += [(t, p, received) for t, p in out.messages]
            results.append(rejection)
            if rejection is not None:
                at = datetime.fromtimestamp(received, UTC)
                rejected.append(quarantine_row(text, payload, rejection, at))

        def also(conn: Connection) -> None:
            sparkplug_state.save(conn, self.host_id, {k: working[k] for k in touched if working[k]})
            telemetry.insert_quarantine(conn, rejected)

        outcome, _ = self.pipeline.store(json_messages, also=also)
        self._states = working
        for reason in (r.reason for r in results if r is not None):
            outcome.add_reason(reason)
        outcome.quarantined += len(rejected)
        for group, edge_node in rebirths:
            self.rebirths_requested += 1
            self.on_rebirth(group, edge_node)
        return outcome, results

    def _load(self, keys: set[NodeKey]) -> None:
        missing = keys - self._states.keys()
        if missing:
            with self.engine.connect() as conn:
                found = sparkplug_state.load(conn, self.host_id, missing)
            self._states.update({k: found.get(k) for k in missing})
