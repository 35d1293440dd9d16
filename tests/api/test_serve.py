"""`servicecast api` with several workers: a socket each, connections spread, a dead worker replaced."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from fleet import migrate
from fleet.db import make_engine
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def listeners(port: int) -> list[set[int]]:
    """The listening sockets on `port`, each as the pids of the processes that hold it."""
    return [
        {int(pid) for pid in re.findall(r"pid=(\d+)", line)} for line in _ss("-ltnpH", f"( sport = :{port} )")
    ]


def worker_pids(port: int) -> set[int]:
    """Pids of the workers if each holds a listening socket of its own on `port`, else nothing."""
    sockets = listeners(port)
    return set().union(*sockets) if sockets and all(len(pids) == 1 for pids in sockets) else set()


def connections_by_pid(port: int) -> Counter:
    """Established connections to `port` per server process."""
    return Counter(
        pid
        for line in _ss("-tnpH", "state", "established", f"( sport = :{port} )")
        for pid in re.findall(r"pid=(\d+)", line)
    )


def _ss(*args: str) -> list[str]:
    return subprocess.run(["ss", *args], capture_output=True, text=True, check=True).stdout.splitlines()


def wait_for(condition, timeout: float) -> bool:
    """Poll `condition` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_two_workers_each_listen_share_connections_and_are_replaced_when_killed(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'api.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    env.update(
        SERVICECAST_DATABASE_URL=database_url, SERVICECAST_API_PORT=str(port), SERVICECAST_API_WORKERS="2"
    )
    server = subprocess.Popen([sys.executable, "-m", "servicecast", "api", "--no-policy"], env=env, cwd=ROOT)
    try:
        assert wait_for(lambda: len(worker_pids(port)) == 2, timeout=60), (
            "two workers, a listening socket each"
        )
        # 40 clients connecting at once: the kernel spreads them over both workers' sockets.
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        for client in clients:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for client in clients:
            assert client.recv(64).startswith(b"HTTP/1.1 200")
        spread = connections_by_pid(port)
        assert len(spread) == 2 and min(spread.values()) >= 5, spread
        for client in clients:
            client.close()

        victim = min(worker_pids(port))
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: len(worker_pids(port)) == 2 and victim not in worker_pids(port), timeout=30)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200

        workers = worker_pids(port)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=40) == 0
        assert not listeners(port) and not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
