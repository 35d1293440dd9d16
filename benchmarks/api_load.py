"""A closed-loop HTTP/1.1 load generator for the API benchmark: raw asyncio keep-alive connections."""

from __future__ import annotations

import asyncio
import random
import re
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.services import connections_by_pid

_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


@dataclass
class Clients:
    """`count` clients on random paths of `paths`; `check` says whether a 200 body is the right answer."""

    paths: list[str]
    count: int
    check: Callable[[bytes], bool] | None = None
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


def _request(path: str, key: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()


async def _one_client(connection, requests: list[bytes], seed: int, deadline: float, group: Clients) -> None:  # noqa: ANN001
    """One keep-alive connection doing request -> full response in a loop."""
    rng = random.Random(seed)
    reader, writer = connection
    clock = time.perf_counter
    try:
        while clock() < deadline:
            started = clock()
            writer.write(rng.choice(requests))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(_CONTENT_LENGTH.search(head).group(1))
            body = await reader.readexactly(length)
            group.latencies.append((clock() - started) * 1000)
            ok = head[9:12] == b"200" and (group.check is None or group.check(body))
            group.errors += not ok
    finally:
        writer.close()


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


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def load_groups(port: int, key: str, groups: dict[str, Clients], seconds: float, gap_ms: float = 0.0):
    """Every group's clients at once for `seconds`; figures per group, latency in ms.

    A raw asyncio client rather than httpx: it needs a tenth of the CPU per request, and the load
    generator shares the machine with the server. The clients connect all at once (or `gap_ms`
    apart); how the connections fell on the workers is reported, as the tail latency depends on it.
    """
    connections = await _connect(port, sum(g.count for g in groups.values()), gap_ms)
    split = connections_per_worker(port)
    cpu_before = _cpu_seconds()
    began = time.perf_counter()
    deadline = began + seconds
    clients, seed = [], 0
    for group in groups.values():
        requests = [_request(path, key) for path in group.paths]
        for _ in range(group.count):
            clients.append(_one_client(connections[seed], requests, seed, deadline, group))
            seed += 1
    await asyncio.gather(*clients)
    elapsed = time.perf_counter() - began
    cpu = round((_cpu_seconds() - cpu_before) / elapsed, 2)
    return {name: _figures(group, elapsed, cpu, split) for name, group in groups.items()}


def _figures(group: Clients, elapsed: float, cpu: float, split: list[int] | None) -> dict:
    cuts = statistics.quantiles(group.latencies, n=100)
    return {
        "requests": len(group.latencies),
        "errors": group.errors,
        "req_per_s": round(len(group.latencies) / elapsed),
        "p50_ms": round(cuts[49], 1),
        "p95_ms": round(cuts[94], 1),
        "p99_ms": round(cuts[98], 1),
        # The load generator shares the cores with the server: how much of them it took.
        "client_cpu_cores": cpu,
        "connections_per_worker": split,
    }


async def load(port: int, key: str, paths: list[str], clients: int, seconds: float, gap_ms: float = 0.0):
    """`clients` closed-loop keep-alive clients on random paths of `paths` for `seconds`."""
    figures = await load_groups(port, key, {"all": Clients(paths, clients)}, seconds, gap_ms)
    return figures["all"]
