"""What the OPC UA bridge tells its operators: Prometheus metrics (on --metrics-port) and its log."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge

log = logging.getLogger(
    "ingest.opcua.bridge"
)  # one logger for the bridge's modules, the name operators filter

BUFFERED = Gauge(
    "servicecast_bridge_buffered_messages", "Messages in the on-disk buffer, not yet acknowledged"
)
DROPPED = Counter(
    "servicecast_bridge_dropped_messages", "Messages lost because the buffer was full, by policy", ["policy"]
)
PUBLISHED = Counter("servicecast_bridge_published_messages", "Messages the broker acknowledged (PUBACK)")
CHANGES = Counter("servicecast_bridge_opcua_notifications", "Notifications from the OPC UA server", ["kind"])
SKIPPED = Counter(
    "servicecast_bridge_skipped_values", "Values not sent, by reason (already sent, not a number)", ["reason"]
)
STEPPED_BACK = Counter(
    "servicecast_bridge_source_time_steps_back",
    "Values sent with a source time earlier than their node's previous one (the server's clock stepped back)",
)
NOT_GOOD = Counter(
    "servicecast_bridge_not_good_values",
    "Values dropped because their OPC UA status was Bad or Uncertain, by status name",
    ["status"],
)
REFUSALS = Counter(
    "servicecast_bridge_opcua_refusals",
    "Times the OPC UA server refused the bridge's session or subscription (each retried), by status name",
    ["status"],
)
BROKER_UP = Gauge("servicecast_bridge_broker_connected", "1 while connected to the MQTT broker")
