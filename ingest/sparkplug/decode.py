"""Sparkplug B topics and protobuf payloads → plain values; never raises on bad input."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from fleet import tables
from ingest.schemas import Rejection
from ingest.sparkplug import sparkplug_b_pb2 as pb

NAMESPACE = "spBv1.0"
REASON_PREFIX = "sparkplug_"  # every quarantine reason of the Sparkplug host starts so
NODE_KINDS = frozenset({"NBIRTH", "NDEATH", "NDATA", "NCMD"})
DEVICE_KINDS = frozenset({"DBIRTH", "DDEATH", "DDATA", "DCMD"})
# Signed integer types travel as two's complement in an unsigned field (int_value 32 bits, long_value 64).
_SIGNED32 = {pb.Int8, pb.Int16, pb.Int32}
_NUMERIC = {pb.Int8, pb.Int16, pb.Int32, pb.Int64, pb.UInt8, pb.UInt16, pb.UInt32, pb.UInt64, pb.Float}
_NUMERIC |= {pb.Double, pb.DateTime}
# The node states' key (sparkplug_nodes): a longer id fails its whole batch on PostgreSQL (varchar counts
# characters, as len does). The device id is stored in no column.
_NODE_KEY = tables.SparkplugNode.__table__.c
LONGEST = {"group": _NODE_KEY.group_id.type.length, "edge node": _NODE_KEY.edge_node.type.length}


@dataclass(frozen=True, slots=True)
class Structured:
    """A DataSet, Template or extension value: no number, so no reading and no event."""

    kind: str


_STRUCTURED = {
    "dataset_value": Structured("DataSet"),
    "template_value": Structured("Template"),
    "extension_value": Structured("extension"),
}


@dataclass(frozen=True, slots=True)
class Topic:
    """`spBv1.0/{group}/{kind}/{edge node}[/{device}]`, or `spBv1.0/STATE/{host}` (kind STATE)."""

    group: str
    kind: str
    edge_node: str
    device: str | None = None


# Topics already parsed; bounded so that a flood of new names cannot grow it forever.
_CACHE_LIMIT = 100_000
_topics: dict[str, Topic] = {}
# One metric as sent: (name in births, alias in data, its time in ms, is_historical, its value as Python,
# its datatype, 0 when not sent). A plain tuple: a DDATA carries several, and an object per metric cost more
# than the protobuf parse.
Metric = tuple[str | None, int | None, int | None, bool, object, int]


def parse_topic(topic: str) -> Topic | Rejection:
    """The parts of a Sparkplug B topic, or why it is not one."""
    known = _topics.get(topic)
    if known is not None:
        return known
    parsed = _parse_topic(topic)
    if type(parsed) is Topic:
        if len(_topics) >= _CACHE_LIMIT:
            _topics.clear()
        _topics[topic] = parsed
    return parsed


def _parse_topic(topic: str) -> Topic | Rejection:
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == NAMESPACE and parts[1] == "STATE":
        return Topic("", "STATE", parts[2])
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE or not all(parts):
        why = f"topic {topic[:200]!r} is not spBv1.0/group/KIND/node[/device]"
        return Rejection("sparkplug_bad_topic", why)
    kind = parts[2]
    if (len(parts) == 4 and kind not in NODE_KINDS) or (len(parts) == 5 and kind not in DEVICE_KINDS):
        why = f"topic {topic[:200]!r} has no valid message type for its level"
        return Rejection("sparkplug_bad_topic", why)
    for what, part in (("group", parts[1]), ("edge node", parts[3])):
        if len(part) > LONGEST[what]:
            why = f"{what} id of {len(part)} characters, more than {LONGEST[what]}, in topic {topic[:200]!r}"
            return Rejection("sparkplug_bad_topic", why)
    return Topic(parts[1], kind, parts[3], parts[4] if len(parts) == 5 else None)


def _value(metric: pb.Payload.Metric, datatype: int) -> object:
    which = metric.WhichOneof("value")
    if which is None or metric.is_null:
        return None
    value = getattr(metric, which)
    if which in ("int_value", "long_value"):
        return as_signed(value, datatype)
    return _STRUCTURED.get(which, value)


def decode_payload(payload: bytes) -> tuple[int | None, int | None, list[Metric]] | Rejection:
    """(timestamp ms, seq, metrics) of a protobuf payload, or why it cannot be read."""
    try:
        message = pb.Payload.FromString(payload)
    except (DecodeError, ValueError, RecursionError) as exc:
        return Rejection("sparkplug_bad_payload", f"payload is not a Sparkplug B protobuf: {str(exc)[:200]}")
    metrics = []
    for m in message.metrics:
        # Unset fields read as "" or 0; HasField (slow) only tells those apart from an explicit 0. An empty
        # name is no name (data by alias carries none).
        name, alias, ms = m.name or None, m.alias, m.timestamp
        if not alias and not m.HasField("alias"):
            alias = None
        if not ms and not m.HasField("timestamp"):
            ms = None
        which = m.WhichOneof("value")
        if which == "double_value" and not m.is_null:
            value = m.double_value  # the common case, without a call
        else:
            value = _value(m, m.datatype)
        metrics.append((name, alias, ms, m.is_historical, value, m.datatype))
    return (
        message.timestamp if message.HasField("timestamp") else None,
        message.seq if message.HasField("seq") else None,
        metrics,
    )


def as_signed(value: int, datatype: int) -> int:
    """An integer as its datatype means it: a signed one arrives as two's complement in an unsigned field."""
    if datatype in _SIGNED32 and 2**31 <= value < 2**32:
        return value - 2**32
    if datatype == pb.Int64 and value >= 2**63:
        return value - 2**64
    return value


def is_signed(datatype: int) -> bool:
    """Whether integers of this datatype travel as two's complement."""
    return datatype in _SIGNED32 or datatype == pb.Int64


def rebirth_request(timestamp_ms: int) -> bytes:
    """An NCMD payload asking an edge node for a rebirth (`Node Control/Rebirth` = true)."""
    message = pb.Payload(timestamp=timestamp_ms)
    metric = message.metrics.add()
    metric.name = "Node Control/Rebirth"
    metric.timestamp = timestamp_ms
    metric.datatype = pb.Boolean
    metric.boolean_value = True
    return message.SerializeToString()


def is_numeric(datatype: int) -> bool:
    """Whether a metric of this datatype carries a number (Boolean counts as 0/1 elsewhere)."""
    return datatype in _NUMERIC
