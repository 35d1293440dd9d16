"""Prometheus metrics and readiness of the ingester, served on SERVICECAST_METRICS_PORT."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

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
UNDECLARED_CODES = Counter(
    "servicecast_ingest_undeclared_codes",
    "Events with a code their machine's type does not declare (stored all the same; redeliveries count)",
)
RECONNECTS = Counter("servicecast_ingest_reconnects", "Connections to the broker after the first")
SUSPECTED_TAKEOVERS = Counter(
    "servicecast_ingest_suspected_takeovers",
    "Connections the broker closed within seconds of opening them or as taken over (another client's id?)",
)
SPARKPLUG_IGNORED_DEATHS = Counter(
    "servicecast_ingest_sparkplug_ignored_deaths",
    "Sparkplug NDEATHs that ended no session, by cause (never_born, stale_bd_seq); redeliveries count",
    ["cause"],
)
DB_ERRORS = Counter("servicecast_ingest_db_errors", "Failed batch commits (retried)")
QUEUE_DEPTH = Gauge("servicecast_ingest_queue_depth", "Messages received and not yet committed")


def observe_many(histogram: Histogram, values: list[float]) -> None:
    """`histogram.observe(v)` for every value, with one increment per bucket instead of one per value.

    Histogram.observe walks its bounds in Python for each value: for a batch of lags that cost more than
    the rest of the batch's bookkeeping. Counts the way observe does (first bound >= value).
    """
    if not values:
        return
    amounts = np.asarray(values, dtype=float)
    bounds = histogram._upper_bounds  # noqa: SLF001 - no public bulk observe in prometheus_client
    counts = np.bincount(np.searchsorted(bounds, amounts, side="left"), minlength=len(bounds))
    for bucket, n in zip(histogram._buckets, counts.tolist(), strict=True):  # noqa: SLF001
        if n:
            bucket.inc(n)
    histogram._sum.inc(float(amounts.sum()))  # noqa: SLF001


# Readiness: a mapping of part → state, and whether every part is as it should be.
Readiness = Callable[[], tuple[bool, dict[str, str]]]


def _handler(ready: Readiness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest())
            elif path == "/readyz":
                ok, parts = ready()
                body = json.dumps({"ready": ok, **parts}).encode()
                self._send(200 if ok else 503, "application/json", body)
            else:
                self._send(404, "text/plain", b"not found: try /metrics or /readyz\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass  # scrapes every few seconds would drown the ingester's own log

    return Handler


def serve(port: int, host: str = "127.0.0.1", *, ready: Readiness) -> ThreadingHTTPServer:
    """Serve /metrics (Prometheus) and /readyz (200 or 503 with what is wrong) on host:port."""
    server = ThreadingHTTPServer((host, port), _handler(ready))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="servicecast-metrics", daemon=True).start()
    return server
