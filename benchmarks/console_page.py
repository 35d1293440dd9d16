"""Console machine page: time to serve 30 days of minute readings as charts (a technician's view).

python -m benchmarks.console_page --json [--days 30] [--loads 20]

One machine with a reading every minute for `--days` days and an hourly risk history; the page is
loaded once for 7 days (as a user would first), then `--loads` times for the whole window, signed in
through the console's own form. Prints p50/p95/max of the server's answer (the HTML with its SVG
charts). Target: under 1 s at p95 on an idle machine (the browser test only checks what is drawn).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

from api import auth
from benchmarks.services import free_port, wait_port
from fleet import migrate, registration, telemetry
from fleet.db import make_engine, session
from fleet.tables import ModelVersion, Prediction, utcnow


def populate(url: str, days: int) -> tuple[str, int]:
    """A machine with `days` of minute readings and hourly predictions; (a technician's key, machine id)."""
    engine = make_engine(url)
    migrate.ensure_schema(engine)
    fleet = [{"tenant": "acme", "machine": "pump-0001", "machine_type": "centrifugal_pump"}]
    ((customer_id, machine_id),) = registration.register_machines(
        engine=engine, machines=fleet, granted_by="benchmark"
    ).values()
    end = utcnow().replace(second=0, microsecond=0)
    minutes = days * 1440
    for first in range(0, minutes, 20_000):
        rows = [
            {
                "customer_id": customer_id,
                "machine_id": machine_id,
                "seq": i + 1,
                "ts": (ts := end - timedelta(minutes=minutes - i)),
                "readings": {
                    "vibration_rms_mm_s": round(2.0 + 0.15 * math.sin(i / 37.0) + i / minutes, 4),
                    "temperature_c": round(61.0 + 4 * math.sin(i / 229.0), 3),
                    "flow_m3_h": round(118.0 + 3 * math.cos(i / 229.0), 3),
                },
                "received_at": ts,
            }
            for i in range(first, min(first + 20_000, minutes))
        ]
        with engine.begin() as conn:
            telemetry.insert_telemetry(conn, rows)
    with session(engine) as sess:
        sess.add(
            ModelVersion(
                version="bench-1",
                machine_type="centrifugal_pump",
                kind="fleet",
                params={"trend_limits": {"vibration_rms_mm_s": 0.6}},
                metrics={"threshold": 0.5},
                artifact=pickle.dumps(None),
                active=True,
            )
        )
        sess.add_all(
            Prediction(
                customer_id=customer_id,
                machine_id=machine_id,
                ts=end - timedelta(hours=hour),
                status="ok",
                horizon_hours=168.0,
                risk=min(0.95, 0.05 + (days * 24 - hour) / (days * 24)),
                failure_mode="bearing_wear",
                rul_hours=40.0,
                rul_low=20.0,
                rul_high=70.0,
                eta=end + timedelta(hours=30),
                eta_sensor="vibration_rms_mm_s",
                contributions=[{"sensor": "vibration_rms_mm_s", "delta": 0.3, "text": "vibration rose"}],
                model_version="bench-1",
            )
            for hour in range(days * 24, -1, -1)
        )
    _, key = auth.create_user(engine=engine, name="bench-tech", role="field_service")
    engine.dispose()
    return key, machine_id


def measure(base: str, key: str, machine_id: int, days: int, loads: int) -> dict:
    """Sign in, warm with 7 days, then time `loads` loads of the whole window."""
    with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as client:
        signed_in = client.post("/login", data={"api_key": key})
        signed_in.raise_for_status()
        client.get(f"/machines/{machine_id}?days=7").raise_for_status()
        times = []
        for _ in range(loads):
            started = time.perf_counter()
            answer = client.get(f"/machines/{machine_id}?days={days}")
            times.append(time.perf_counter() - started)
            answer.raise_for_status()
            assert 'class="series"' in answer.text, "the page drew no chart"
    times.sort()
    return {
        "loads": loads,
        "p50_s": round(statistics.median(times), 3),
        "p95_s": round(times[max(0, math.ceil(0.95 * loads) - 1)], 3),
        "max_s": round(times[-1], 3),
        "bytes": len(answer.content),
    }


def main() -> None:
    """Populate a SQLite file, start `servicecast api`, time the page, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'console-bench.db'}"
        key, machine_id = populate(url, args.days)
        port = free_port()
        env = {
            **os.environ,
            "SERVICECAST_DATABASE_URL": url,
            "SERVICECAST_API_PORT": str(port),
            "SERVICECAST_LOG_LEVEL": "WARNING",
        }
        load_before = os.getloadavg()
        server = subprocess.Popen([sys.executable, "-m", "servicecast", "api"], env=env)
        try:
            wait_port(port, timeout=60)
            result = measure(f"http://127.0.0.1:{port}", key, machine_id, args.days, args.loads)
        finally:
            server.terminate()
            server.wait(15)
    result.update(days=args.days, load_before=load_before[0], load_after=os.getloadavg()[0])
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
