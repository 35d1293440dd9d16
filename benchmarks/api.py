"""API latency under load: alert list, machine detail and telemetry range at 50 concurrent clients.

python -m benchmarks.api --json [--machines 1000] [--rows 1000000] [--alerts 10000] [--clients 50]
    [--rounds alert_list_while_writing,...]

The alert list is loaded twice: alone, and while another process updates alerts (`--alert-writes` per
second), which makes the API's cached pages stale and read again; both figures are printed. The last
round has 5 clients (`--long-clients`) read the longest window the API allows over a machine with a
reading every minute of it, averaged into `--long-points` points, while the other clients read
/healthz: an answer that is not 200 with exactly that many points counts as an error. `--rounds` runs
only the rounds it names (an A/B pair of one round then takes well under a minute). Each round but the
last also reports the server's CPU per request (its processes' user and system time over the round),
which moves far less with the machine's load than latency does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, bindparam, select, update

from api import auth
from benchmarks.api_load import Clients, load, load_groups
from benchmarks.services import free_port, wait_port
from fleet import migrate, registration, telemetry
from fleet.db import make_engine, session
from fleet.settings import Settings
from fleet.tables import Alert, Machine

START = datetime(2026, 10, 1, tzinfo=UTC)
ROUNDS = (
    "alert_list",
    "machine_detail",
    "telemetry_range",
    "healthz",
    "alert_list_while_writing",
    "long_telemetry",
)
SEVERITIES = ("critical", "high", "medium")


def populate(url: str, machines: int, rows: int, alerts: int) -> tuple[str, list[int]]:
    """Customers, machines, telemetry and alerts; returns an admin key and the machine ids."""
    engine = make_engine(url)
    migrate.ensure_schema(engine)
    fleet = [
        {
            "tenant": f"customer-{i % 20:02d}",
            "customer_name": f"Customer {i % 20}",
            "machine": f"pump-{i:04d}",
            "machine_type": "centrifugal_pump",
        }
        for i in range(machines)
    ]
    registered = registration.register_machines(engine=engine, machines=fleet, granted_by="benchmark")
    ids = [registered[(m["tenant"], m["machine"])] for m in fleet]
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
                queue_rank=1 + SEVERITIES.index(severity),
                status=rng.choice(("open", "acknowledged", "assigned", "resolved")),
                risk=round(rng.uniform(0.5, 1.0), 3),
                lead_time_hours=(lead := round(rng.uniform(1, 400), 1)),
                lead_rank=lead,
                evidence={"explanation": "vibration rose 40 % in 3 days"},
            )
            for i in range(alerts)
        )
    _fill_window(engine, fleet[0]["tenant"])
    _, key = auth.create_user(engine=engine, name="bench-admin", role="admin")
    engine.dispose()
    return key, [machine_id for _, machine_id in ids]


LONG_CODE = "long-window"


def max_window() -> timedelta:
    """The longest telemetry window the API answers, by its settings' default."""
    return timedelta(days=Settings.model_fields["api_telemetry_max_window_days"].default)


def _fill_window(engine: Engine, tenant: str) -> None:
    """A machine with a reading every minute over the whole maximum window, from START."""
    spec = {"tenant": tenant, "machine": LONG_CODE, "machine_type": "centrifugal_pump"}
    registered = registration.register_machines(engine=engine, machines=[spec], granted_by="benchmark")
    customer_id, machine_id = registered[(tenant, LONG_CODE)]
    minutes = int(max_window() / timedelta(minutes=1))
    for first in range(0, minutes, 20_000):
        batch = [
            {
                "customer_id": customer_id,
                "machine_id": machine_id,
                "seq": step + 1,
                "ts": START + timedelta(minutes=step),
                "readings": {"flow_m3h": 120.0 + step % 17, "bearing_temp_c": 60.0 + step % 11},
                "received_at": START + timedelta(minutes=step),
            }
            for step in range(first, min(first + 20_000, minutes))
        ]
        with engine.begin() as conn:
            telemetry.insert_telemetry(conn, batch)


def long_machine(url: str) -> int:
    """The id of the machine whose telemetry fills the maximum window."""
    engine = make_engine(url)
    with engine.connect() as conn:
        found = conn.scalar(select(Machine.id).where(Machine.code == LONG_CODE))
    engine.dispose()
    return found


def has_points(count: int):  # noqa: ANN201
    """A check of a telemetry answer: exactly `count` points."""
    return lambda body: len(json.loads(body)["points"]) == count


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
        ids = list(sess.scalars(select(Machine.id).where(Machine.code != LONG_CODE).order_by(Machine.id)))
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


def _long_reads(port: int, key: str, url: str, args: argparse.Namespace) -> dict:
    """5 clients read the whole maximum window of the long machine while 45 others read /healthz."""
    days = max_window() / timedelta(days=1)
    window = f"start={START.isoformat()}&end={(START + max_window()).isoformat()}".replace("+", "%2B")
    path = f"/api/v1/machines/{long_machine(url)}/telemetry?{window}&max_points={args.long_points}"
    groups = {
        "long_telemetry": Clients([path], args.long_clients, has_points(args.long_points)),
        "healthz_beside_long_telemetry": Clients(["/healthz"], args.clients - args.long_clients),
    }
    asyncio.run(load_groups(port, key, {"warm": Clients([path], args.long_clients)}, 1.0))
    figures = asyncio.run(load_groups(port, key, groups, args.seconds, args.connect_gap_ms))
    figures["long_telemetry"].update(window_days=days, points=args.long_points)
    return figures


def _while_writing(port: int, key: str, url: str, endpoints: dict, args: argparse.Namespace) -> dict:
    """The alert list loaded while another thread updates alerts at `--alert-writes` per second."""
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
    return {**during, "alert_writes_per_s": round(writes[0] / args.seconds, 1)}


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user and system) of process `pid` and all its descendants so far, from /proc."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += sum(server_cpu_s(int(child)) for child in (task / "children").read_text().split())
    except FileNotFoundError:  # a process that ended meanwhile
        pass
    return total


def _with_server_cpu(pid: int, run: Callable[[], dict]) -> dict:
    """A round's figures with the server's CPU per request: unlike latency, it barely moves with load."""
    before = server_cpu_s(pid)
    figures = run()
    figures["server_cpu_ms_per_request"] = round((server_cpu_s(pid) - before) * 1000 / figures["requests"], 3)
    return figures


def _rounds(text: str) -> tuple[str, ...]:
    """The rounds named in `text`, in the benchmark's order; an unknown name is an argument error."""
    names = {name.strip() for name in text.split(",") if name.strip()}
    if unknown := names - set(ROUNDS):
        raise argparse.ArgumentTypeError(f"unknown rounds: {', '.join(sorted(unknown))}")
    return tuple(name for name in ROUNDS if name in names)


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
    parser.add_argument("--long-clients", type=int, default=5, help="clients reading the longest window")
    parser.add_argument(
        "--long-points", type=int, default=5000, help="points they ask for (at most the API's maximum)"
    )
    parser.add_argument("--db", type=Path, help="SQLite file to keep; filled only if it does not exist")
    parser.add_argument(
        "--rounds",
        type=_rounds,
        default=ROUNDS,
        help=f"comma-separated rounds to run, in this order: {','.join(ROUNDS)} (default: all)",
    )
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
            plain = [name for name in endpoints if name in args.rounds]
            writing = "alert_list_while_writing" in args.rounds
            # warm up every worker's caches and connection pool for the rounds to run
            for name in [name for name in endpoints if name in plain or (writing and name == "alert_list")]:
                asyncio.run(load(port, key, endpoints[name], args.clients, 1.0, args.connect_gap_ms))
            results = {
                name: _with_server_cpu(
                    server.pid,
                    lambda paths=endpoints[name]: asyncio.run(
                        load(port, key, paths, args.clients, args.seconds, args.connect_gap_ms)
                    ),
                )
                for name in plain
            }
            if writing:
                results["alert_list_while_writing"] = _with_server_cpu(
                    server.pid, lambda: _while_writing(port, key, url, endpoints, args)
                )
            if "long_telemetry" in args.rounds:
                results.update(_long_reads(port, key, url, args))
        finally:
            server.terminate()
            server.wait(timeout=30)
        load_after = os.getloadavg()
    for figures in results.values() if "healthz" in results else ():
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
        "rounds": list(args.rounds),
        "populate_s": round(populate_s, 1),
        # 1-minute load average before and after the run: the machine is shared, and figures move with it.
        "load_avg": [round(load_before[0], 2), round(load_after[0], 2)],
        "cores": os.cpu_count(),
        **results,
    }
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
