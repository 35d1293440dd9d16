"""Prometheus metrics of the ingester, exposed on SERVICECAST_METRICS_PORT."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

MESSAGES = Counter("servicecast_ingest_messages", "Messages handled by the ingester, by outcome", ["outcome"])
QUARANTINED = Counter("servicecast_ingest_quarantined", "Messages put in quarantine, by reason", ["reason"])
BATCH_COMMIT_SECONDS = Histogram(
    "servicecast_ingest_batch_commit_seconds",
    "Time to write and commit one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LAG_SECONDS = Histogram(
    "servicecast_ingest_lag_seconds",
    "Device timestamp to commit",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
RECONNECTS = Counter("servicecast_ingest_reconnects", "Connections to the broker after the first")
DB_ERRORS = Counter("servicecast_ingest_db_errors", "Failed batch commits (retried)")
QUEUE_DEPTH = Gauge("servicecast_ingest_queue_depth", "Messages received and not yet committed")


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics for Prometheus on host:port."""
    start_http_server(port, addr=host)
