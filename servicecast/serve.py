"""Serve the API in several uvicorn processes, each accepting on a listening socket of its own."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from dataclasses import dataclass

import uvicorn

from fleet import subprocesses

log = logging.getLogger(__name__)
APP = "servicecast.serve:app_from_env"
RESTART_DELAY_S = 1.0


@dataclass(frozen=True)
class ServeOptions:
    """What every worker needs to start uvicorn."""

    host: str
    port: int
    log_level: str
    access_log: bool


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket on host:port that other processes may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_worker(options: ServeOptions, supervisor_pid: int) -> None:
    """One worker: its own socket in the port's SO_REUSEPORT group, one uvicorn server on it.

    It ends with the supervisor, even one killed with SIGKILL, instead of serving on alone; `serve` starts
    workers from the thread it runs on, the command's main thread.
    """
    subprocesses.die_with_parent(supervisor_pid)
    config = uvicorn.Config(
        APP, factory=True, log_level=options.log_level, access_log=options.access_log, workers=1
    )
    uvicorn.Server(config).run(sockets=[listening_socket(options.host, options.port)])


def serve(options: ServeOptions, workers: int) -> None:
    """Run `workers` processes until SIGINT or SIGTERM, starting a new one for any that dies.

    uvicorn's own workers share one listening socket, and a worker that wakes for new connections
    accepts every one waiting, so clients connecting together can pile onto one worker (measured in
    docs/benchmarks.md). With a socket per worker the kernel spreads new connections over the workers
    by their addresses.
    """
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(
            target=run_worker, args=(options, os.getpid()), name="servicecast-api-worker"
        )
        process.start()
        return process

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [start() for _ in range(workers)]
    try:
        while not stopping:
            time.sleep(0.2)
            for index, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    log.warning("API worker %s exited (%s); starting another", process.pid, process.exitcode)
                    time.sleep(RESTART_DELAY_S)
                    processes[index] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def app_from_env():  # noqa: ANN201 - a FastAPI app
    """The API app as uvicorn workers build it, given what only the composition root may: ingest's replay."""
    from api.app import app_from_env as bare_app
    from ingest import quarantine

    app = bare_app()
    app.state.replay_quarantine = quarantine.replay  # the console's replay button (api may not import ingest)
    return app
