"""API latency under load: alert list, machine detail and telemetry range at 50 concurrent clients.

python -m benchmarks.api --json [--machines 1000] [--rows 1000000] [--alerts 10000] [--clients 50]

The alert list is loaded twice: alone, and while another process updates alerts (`--alert-writes` per
second), which makes the API's cached pages stale and read again; both figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import bindparam, select, update

from api import auth
from benchmarks.services import connections_by_pid, free_port, wait_port
from fleet import migrate, telemetry
from fleet.db import make_engine, session
from fleet.tables import Alert, Customer, DataUseGrant, Machine

START = datetime(2026, 10, 1, tzinfo=UTC)
SEVERITIES = ("critical", "high", "medium")


def populate(url: str, machines: int, rows: int, alerts: int) -> tuple[str, list[int]]:
    """Customers, machines, telemetry and alerts; returns an admin key and the machine ids."""
    engine = make_engine(url)
    migrate.ensure_schema(engine)
    with session(engine) as sess:
        customers = [Customer(tenant=f"customer-{i:02d}", name=f"Customer {i}") for i in range(20)]
        sess.add_all(customers)
        sess.flush()
        sess.add_all(DataUseGrant(customer_id=c.id, purpose="service") for c in customers)
        fleet = [
            Machine(customer_id=customers[i % 20].id, code=f"pump-{i:04d}", machine_type="centrifugal_pump")
            for i in range(machines)
        ]
        sess.add_all(fleet)
        sess.flush()
        ids = [(m.customer_id, m.id) for m in fleet]
    per_machine = rows // machines
    batch = []
    for step in range(per_machine):
        ts = START + timedelta(minutes=step)
        for customer_id, machine_id in ids:
            batch.append(
                {
                    "customer_id": customer_id,
                    "machine_id": machine_id,
                    "seq": step + 1,
                    "ts": ts,
                    "readings": {"flow_m3h": 120.0 + step % 17, "bearing_temp_c": 60.0 + step % 11},
                    "received_at": ts,
                }
            )
            if len(batch) == 20_000:
                with engine.begin() as conn:
                    telemetry.insert_telemetry(conn, batch)
                batch = []
    if batch:
        with engine.begin() as conn:
            telemetry.insert_telemetry(conn, batch)
    rng = random.Random(7)
    with session(engine) as sess:
        sess.add_all(
            Alert(
                customer_id=ids[i % machines][0],
                machine_id=ids[i % machines][1],
                failure_mode=f"mode-{i // machines}",
                severity=(severity := rng.choice(SEVERITIES)),
                severity_rank=1 + SEVERITIES.index(severity),
                status=rng.choice(("open", "acknowledged", "assigned", "resolved")),
                risk=round(rng.uniform(0.5, 1.0), 3),
                lead_time_hours=(lead := round(rng.uniform(1, 400), 1)),
                lead_rank=lead,
                evidence={"explanation": "vibration rose 40 % in 3 days"},
            )
            for i in range(alerts)
        )
    _, key = auth.create_user(engine=engine, name="bench-admin", role="admin")
    engine.dispose()
    return key, [machine_id for _, machine_id in ids]


def _request(path: str, key: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()


async def _one_client(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    requests: list[bytes],
    seed: int,
    deadline: float,
    latencies: list[float],
) -> int:
    """One keep-alive connection doing request -> full response in a loop; returns the non-200 count."""
    rng = random.Random(seed)
    reader, writer = connection
    errors = 0
    clock = time.perf_counter
    try:
        while clock() < deadline:
            started = clock()
            writer.write(rng.choice(requests))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(_CONTENT_LENGTH.search(head).group(1))
            await reader.readexactly(length)
            latencies.append((clock() - started) * 1000)
            errors += head[9:12] != b"200"
    finally:
        writer.close()
    return errors


_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


async def _connect(port: int, clients: int, gap_ms: float) -> list:
    """`clients` connections, opened `gap_ms` apart, or all in the same instant with 0."""
    if not gap_ms:
        return await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(clients)))
    connections = []
    for _ in range(clients):
        connections.append(await asyncio.open_connection("127.0.0.1", port))
        await asyncio.sleep(gap_ms / 1000)
    return connections


def connections_per_worker(port: int) -> list[int] | None:
    """How many of the established connections to `port` each server process holds."""
    try:
        return sorted(connections_by_pid(port).values())
    except (OSError, subprocess.CalledProcessError):
        return None


async def load(
    port: int, key: str, paths: list[str], clients: int, seconds: float, gap_ms: float = 0.0
) -> dict:
    """`clients` closed-loop HTTP/1.1 keep-alive clients on random paths for `seconds`; latency in ms.

    A raw asyncio client rather than httpx: it needs a tenth of the CPU per request, and the load
    generator shares the machine with the server. The clients connect all at once (or `gap_ms`
    apart); how the connections fell on the workers is reported, as the tail latency depends on it.
    """
    requests = [_request(path, key) for path in paths]
    connections = await _connect(port, clients, gap_ms)
    split = connections_per_worker(port)
    latencies: list[float] = []
    cpu_before = _cpu_seconds()
    began = time.perf_counter()
    deadline = began + seconds
    errors = await asyncio.gather(
        *(_one_client(c, requests, seed, deadline, latencies) for seed, c in enumerate(connections))
    )
    elapsed = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "errors": sum(errors),
        "req_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(cuts[49], 1),
        "p95_ms": round(cuts[94], 1),
        "p99_ms": round(cuts[98], 1),
        # The load generator shares the cores with the server: how much of them it took.
        "client_cpu_cores": round((_cpu_seconds() - cpu_before) / elapsed, 2),
        "connections_per_worker": split,
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_alerts(url: str, per_second: float, stop: threading.Event, done: list[int]) -> None:
    """Update one alert after another at `per_second` until `stop`, as the policy and technicians do.

    Each update raises the alerts change counter, so the API's cached pages go stale and are read again.
    """
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = list(conn.scalars(select(Alert.id).order_by(Alert.id)))
    bump = update(Alert).where(Alert.id == bindparam("alert_id")).values(count=Alert.count + 1)
    next_at, count = time.perf_counter(), 0
    while not stop.is_set():
        with engine.begin() as conn:
            conn.execute(bump, {"alert_id": ids[count % len(ids)]})
        count += 1
        next_at += 1 / per_second
        stop.wait(max(0.0, next_at - time.perf_counter()))
    engine.dispose()
    done.append(count)


def existing(url: str) -> tuple[str, list[int]]:
    """A fresh admin key and the machine ids of a database that `populate` filled earlier."""
    engine = make_engine(url)
    with session(engine) as sess:
        ids = list(sess.scalars(select(Machine.id).order_by(Machine.id)))
    key = auth.issue_key(engine=engine, name="bench-admin")
    engine.dispose()
    return key, ids


def check(base: str, key: str, endpoints: dict[str, list[str]]) -> None:
    """One request per endpoint before the load: each answers 200 with real rows, or the run stops."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for name, paths in endpoints.items():
            response = client.get(paths[0])
            response.raise_for_status()
            body = response.json()
            rows = len(body) if isinstance(body, list) else body.get("rows", 1)
            if not rows:
                raise SystemExit(f"{name}: {paths[0]} answered no rows")


def main() -> None:
    """Populate, start uvicorn, load each endpoint and /healthz, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--connect-gap-ms", type=float, default=0.0, help="between client connects; 0 connects all at once"
    )
    parser.add_argument(
        "--alert-writes", type=float, default=50.0, help="alert updates per second in the last round"
    )
    parser.add_argument("--db", type=Path, help="SQLite file to keep; filled only if it does not exist")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "api-bench.db"
        url = f"sqlite:///{path}"
        started = time.perf_counter()
        if path.exists():
            key, machine_ids = existing(url)
        else:
            key, machine_ids = populate(url, args.machines, args.rows, args.alerts)
        populate_s = time.perf_counter() - started
        load_before = os.getloadavg()
        port = free_port()
        env = {
            **os.environ,
            "SERVICECAST_DATABASE_URL": url,
            "SERVICECAST_API_PORT": str(port),
            "SERVICECAST_API_WORKERS": str(args.workers),
            "SERVICECAST_LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "servicecast", "api"],
            env=env,
            cwd=Path(__file__).parents[1],
        )
        try:
            wait_port(port, timeout=60)
            end = START + timedelta(minutes=args.rows // args.machines)
            window = f"start={START.isoformat()}&end={end.isoformat()}".replace("+", "%2B")
            endpoints = {
                "alert_list": ["/api/v1/alerts?limit=50"],
                "machine_detail": [f"/api/v1/machines/{m}" for m in machine_ids],
                "telemetry_range": [
                    f"/api/v1/machines/{m}/telemetry?{window}&max_points=200" for m in machine_ids
                ],
                "healthz": ["/healthz"],
            }
            check(f"http://127.0.0.1:{port}", key, endpoints)
            for paths in endpoints.values():  # warm up every worker's caches and connection pool
                asyncio.run(load(port, key, paths, args.clients, 1.0, args.connect_gap_ms))
            results = {
                name: asyncio.run(load(port, key, paths, args.clients, args.seconds, args.connect_gap_ms))
                for name, paths in endpoints.items()
            }
            stop, writes = threading.Event(), []
            writer = threading.Thread(target=write_alerts, args=(url, args.alert_writes, stop, writes))
            writer.start()
            try:
                during = asyncio.run(
                    load(port, key, endpoints["alert_list"], args.clients, args.seconds, args.connect_gap_ms)
                )
            finally:
                stop.set()
                writer.join()
            results["alert_list_while_writing"] = {
                **during,
                "alert_writes_per_s": round(writes[0] / args.seconds, 1),
            }
        finally:
            server.terminate()
            server.wait(timeout=30)
        load_after = os.getloadavg()
    for figures in results.values():
        figures["vs_healthz"] = round(figures["req_per_s"] / results["healthz"]["req_per_s"], 2)
    report = {
        "db": "sqlite",
        "machines": args.machines,
        "telemetry_rows": args.rows,
        "alerts": args.alerts,
        "clients": args.clients,
        "workers": args.workers,
        "seconds": args.seconds,
        "connect_gap_ms": args.connect_gap_ms,
        "populate_s": round(populate_s, 1),
        # 1-minute load average before and after the run: the machine is shared, and figures move with it.
        "load_avg": [round(load_before[0], 2), round(load_after[0], 2)],
        "cores": os.cpu_count(),
        **results,
    }
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
