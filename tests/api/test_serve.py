"""`servicecast api` with several workers: a socket each, connections spread, a dead worker replaced."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from fleet import migrate, subprocesses
from fleet.db import make_engine
from tests.ingest.support import wait_until
from tests.processes import Watched, children
from tests.services import connections_by_pid, free_port, listeners

ROOT = Path(__file__).resolve().parents[2]


def worker_pids(port: int) -> set[int]:
    """Pids of the workers if each holds a listening socket of its own on `port`, else nothing."""
    sockets = listeners(port)
    return set().union(*sockets) if sockets and all(len(pids) == 1 for pids in sockets) else set()


def _two_workers(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    """`servicecast api` with two workers on a migrated SQLite file: the process and its port."""
    database_url = f"sqlite:///{tmp_path / 'api.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    env.update(
        SERVICECAST_DATABASE_URL=database_url, SERVICECAST_API_PORT=str(port), SERVICECAST_API_WORKERS="2"
    )
    return subprocesses.popen([sys.executable, "-m", "servicecast", "api"], env=env, cwd=ROOT), port


def test_two_workers_each_listen_share_connections_and_are_replaced_when_killed(tmp_path: Path) -> None:
    server, port = _two_workers(tmp_path)
    try:
        wait_until(lambda: len(worker_pids(port)) == 2, 60, "two workers, a listening socket each")
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
        wait_until(
            lambda: len(worker_pids(port)) == 2 and victim not in worker_pids(port),
            30,
            "a new worker in place of the killed one",
        )
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=60).status_code == 200

        workers = worker_pids(port)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=120) == 0  # a guard for a hung stop, not its speed: CI is loaded
        assert not listeners(port) and not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_the_workers_end_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    server, port = _two_workers(tmp_path)
    try:
        wait_until(lambda: len(worker_pids(port)) == 2, 60, "two workers, a listening socket each")
        spawned = Watched(children(server.pid))  # the workers and multiprocessing's resource tracker
        server.kill()
        server.wait(10)
        spawned.wait_ended(60, "the processes of a supervisor killed with SIGKILL to end")
        assert not listeners(port)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
