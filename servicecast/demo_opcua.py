"""The demo's OPC UA machine: a simulated press served over OPC UA and bridged in-process to the broker."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from pathlib import Path

import typer

from fleet import contract
from fleet.settings import MqttEndpoint
from ingest.opcua import bridge, mapping
from ingest.opcua.buffer import Buffer
from ingest.opcua.publisher import Publisher
from simulators.opcua_machine import MAP as EXAMPLE_MAP
from simulators.opcua_machine import MachineServer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoOpcUaMachine:
    """acme/press-7 of the example map: its changes and alarms arrive through `bridge opcua`'s code."""

    def __init__(self, mqtt_url: str, protocol: str, steps: int = 40, period_s: float = 0.05) -> None:
        self.map = mapping.load(EXAMPLE_MAP)
        self.server = MachineServer(port=_free_port())
        self.mqtt_url, self.protocol = mqtt_url, protocol
        self.steps, self.period_s = steps, period_s
        self._dir = tempfile.TemporaryDirectory(prefix="servicecast-demo-opcua-")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="servicecast-demo-opcua", daemon=True
        )
        self._shift = threading.Thread(target=self._run_shift, name="servicecast-demo-press", daemon=True)
        self._ended = threading.Event()  # set when the demo stops early: the shift ends at its next step
        self._serving = False
        self.buffer: Buffer | None = None
        self._task: asyncio.Task | None = None

    def __enter__(self) -> DemoOpcUaMachine:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        # Interrupted (Ctrl-C, SIGTERM) or failed: stop at once rather than wait for the shift and the broker.
        self.stop(drain=exc_type is None)

    def start(self) -> DemoOpcUaMachine:
        """Serve the press, bridge it, and let it work a short shift in the background."""
        try:
            self.server.start()
            self._serving = True
            self._thread.start()
            asyncio.run_coroutine_threadsafe(self._setup(), self._loop).result(timeout=10)
            self._shift.start()
        except BaseException:
            self.stop(drain=False)
            raise
        return self

    async def _setup(self) -> None:
        # The buffer's SQLite connection belongs to the loop's thread, as in `servicecast bridge opcua`.
        self.buffer = Buffer(Path(self._dir.name) / "buffer.db", max_messages=10_000)
        self.publisher = Publisher(
            endpoint=MqttEndpoint(self.mqtt_url),
            client_id="servicecast-demo-opcua",
            buffer=self.buffer,
            protocol=self.protocol,
        )
        access = bridge.ServerAccess(endpoint=self.server.endpoint)
        run = bridge.run(access=access, mapping=self.map, buffer=self.buffer, publisher=self.publisher)
        self._task = asyncio.get_running_loop().create_task(run)

    def _run_shift(self) -> None:
        # The bridge buffers the identification once it has subscribed, and the subscription's initial values
        # after it. A change made before those were sent would replace them in the server's queue (one value
        # per node), so the press waits for both (a fixed 1 s was too short at load 26).
        end = time.monotonic() + 60
        while self.buffer.added_to.total() < 2 and time.monotonic() < end:
            if self._ended.wait(0.05):
                return
        for i in range(self.steps):
            self.server.step()
            if i == self.steps // 2:
                self.server.alarm(active=True)
            if self._ended.wait(self.period_s):
                return
        self.server.alarm(active=False)

    def _all_buffered(self) -> bool:
        """True once the buffer holds the press's last change, every alarm event and the identification."""
        last = self.server.changes[-1].ts if self.server.changes else None
        events = self.buffer.added_to[contract.events_topic(self.map.tenant, self.map.machine)]
        return (last is None or self.buffer.newest_seen >= last) and events >= self.server.alarms + 1

    @property
    def published(self) -> int:
        """Messages the broker has acknowledged from the press so far."""
        return self.publisher.published

    def stop(self, deadline_s: float = 60.0, *, drain: bool = True) -> None:
        """Stop the bridge and the server, leaving no thread, task, open loop, port or buffer file behind.

        drain: first wait until the broker has taken every message of the whole shift; without, stop now.
        """
        try:
            if drain and self._shift.is_alive():
                self._shift.join(timeout=deadline_s)
            if drain and self.buffer is not None:
                self._drain(deadline_s)
        finally:  # a Ctrl-C while it drains still stops the rest
            self._ended.set()
            if self._shift.is_alive():
                self._shift.join(timeout=deadline_s)
            self._shut()

    def _shut(self) -> None:
        """End the bridge and what it left on its loop, the loop and its thread, the server, the folder."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=15)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
        if self._serving:
            self.server.stop()
            self._serving = False
        self._dir.cleanup()

    def _drain(self, deadline_s: float) -> None:
        end = time.monotonic() + deadline_s
        # The press's last change and alarm event reach the buffer a publishing interval later, longer on a
        # loaded machine (a fixed 1 s could close the bridge before them: a rerun's press came out one event
        # short); then the broker takes what the buffer holds.
        while not self._all_buffered() and time.monotonic() < end:
            time.sleep(0.05)
        while self.buffer.count and time.monotonic() < end:
            time.sleep(0.05)
        typer.echo(
            f"OPC UA: {self.map.tenant}/{self.map.machine} bridged from {self.server.endpoint}: "
            f"{len(self.server.changes)} value changes and {self.server.alarms} alarm events over MQTT"
            + (f", {self.buffer.count} left unsent" if self.buffer.count else "")
        )

    async def _close(self) -> None:
        # The bridge's stop says goodbye to the server and flushes, each bounded; then the buffer may close.
        # Whatever asyncua's client left on the loop goes too: a task pending on a closed loop is destroyed
        # later with "Task was destroyed but it is pending!".
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})
        left = [other for other in asyncio.all_tasks() if other is not asyncio.current_task()]
        for other in left:
            other.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        if self.buffer is not None:
            self.buffer.close()
