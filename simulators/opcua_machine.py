"""A simulated machine with an OPC UA server laid out as OPC UA for Machinery suggests (asyncua)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.user_managers import UserManager

NAMESPACE = "urn:servicecast:example:press"
STATES = ("NotAvailable", "OutOfService", "NotExecuting", "Executing")
ALARM = "SpindleOverTemperature"
MAP = Path(__file__).with_name("opcua-machine.yaml")  # its bridge map: package data, the README example
CALL_S = 30.0  # how long a start, stop or change may take on an idle machine; stretched by `deadline`
log = logging.getLogger(__name__)


def deadline(base_s: float, *, load: float | None = None, cores: int | None = None) -> float:
    """`base_s` stretched by the runnable processes per core: a starved server is slow, not hung.

    At load 16 on 2 cores the server's thread gets about an eighth of a core, and its ~1 s of CPU to
    start took past the fixed 30 s wait (CI runs the suite with several workers).
    """
    load = os.getloadavg()[0] if load is None else load
    cores = cores or os.cpu_count() or 1
    return base_s * max(1.0, load / cores)


class _Passwords(UserManager):
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def get_user(self, iserver, username=None, password=None, certificate=None):  # noqa: ANN001, ANN201
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


class StandardNodes:
    """asyncua's standard address space, pickled by the second server a process builds it for.

    Building its ~6,000 nodes from asyncua's generated code costs ~1.7 CPU-s a server, unpickling a copy
    ~0.7 and pickling ~1.7 once: a process that starts one server (the demo) pickles nothing, one that starts
    a server per test (the bridge tests) copies from its third on (a start in a test worker's heap: 2.0 CPU-s
    before, 0.6 with a copy). Each copy is the server's own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.builds = 0
        self._pickled: bytes | None = None

    def copy(self) -> dict | None:
        """A fresh copy of the nodes, or None while none is kept."""
        pickled = self._pickled
        return None if pickled is None else pickle.loads(pickled)

    def built(self, nodes: dict) -> None:
        """Count a build of the nodes (untouched yet by the server); keep them at the second."""
        with self._lock:
            self.builds += 1
            keep = self.builds == 2
        if keep:
            self._pickled = pickle.dumps(nodes, pickle.HIGHEST_PROTOCOL)


STANDARD_NODES = StandardNodes()


class _InternalServer(InternalServer):
    """asyncua's internal server, its standard address space a copy of STANDARD_NODES' where one is kept."""

    async def load_standard_address_space(self, shelf_file: Path | None = None) -> None:
        nodes = STANDARD_NODES.copy()
        if nodes is not None:
            self.aspace._nodes = nodes
            return
        await super().load_standard_address_space(shelf_file)
        STANDARD_NODES.built(self.aspace._nodes)


def _awaiting(coro) -> list[str]:  # noqa: ANN001
    """Where a suspended coroutine waits: each coroutine of its await chain as name:line, then the awaited."""
    chain = []
    while getattr(coro, "cr_frame", None) is not None:
        chain.append(f"{coro.__qualname__}:{coro.cr_frame.f_lineno}")
        coro = coro.cr_await
    return chain if coro is None else [*chain, type(coro).__name__]


@dataclass
class Change:
    """One value the machine set: which variable, the value, its source time."""

    sensor: str
    value: float
    ts: datetime


@dataclass
class MachineServer:
    """Serves one press on opc.tcp://127.0.0.1:PORT in a thread of its own; `changes` lists what it set."""

    port: int
    serial: str = "SN-4711"
    users: dict[str, str] | None = None  # user name -> password; anonymous access is refused when set
    security: tuple[str, str] | None = None  # (certificate, private key) for Basic256Sha256 SignAndEncrypt
    other_namespaces: tuple[str, ...] = ()  # registered before the press's: its namespace index moves up
    call_s: float = CALL_S  # a start, stop or change not done within deadline(call_s) fails, naming it
    changes: list[Change] = field(default_factory=list)
    alarms: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="opcua-machine", daemon=True)
        self._step = 0

    @property
    def endpoint(self) -> str:
        """The URL a client connects to."""
        return f"opc.tcp://127.0.0.1:{self.port}"

    def start(self) -> MachineServer:
        """Build the address space and listen."""
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        """Stop the server, what it left running, and its thread; close its loop."""
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """A hung machine: connections stay open (the kernel even accepts new ones), nothing is answered."""
        resume = threading.Event()
        self._loop.call_soon_threadsafe(resume.wait)
        try:
            yield
        finally:
            resume.set()

    def step(self, n: int = 1) -> None:
        """Change every monitoring variable n times (and the state now and then), recording each change."""
        for _ in range(n):
            self._call(self._change())

    def alarm(self, active: bool = True) -> None:
        """Raise (or clear) the spindle over-temperature alarm."""
        self._call(self._alarm(active))

    def _call(self, coro):  # noqa: ANN001, ANN202
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        wait = deadline(self.call_s)
        try:
            return future.result(timeout=wait)
        except TimeoutError:
            frame = sys._current_frames().get(self._thread.ident)
            stack = "".join(traceback.format_stack(frame)) if frame else "(its thread has ended)\n"
            awaiting = " -> ".join(_awaiting(coro))
            future.cancel()
            raise TimeoutError(
                f"the OPC UA server at {self.endpoint} did not finish {coro.__qualname__} in {wait:.0f} s "
                f"(load average {os.getloadavg()[0]:.1f}); it awaits {awaiting or 'nothing yet'}; "
                f"its loop's thread is at:\n{stack}"
            ) from None

    async def _start(self) -> None:
        server = self.server = Server(iserver=_InternalServer())
        # The standard address space is ~6,000 nodes of fresh objects: with the collector on, its passes over
        # them took ~40 % of the ~1.4 s of CPU a start costs (measured in a test worker's heap); a copy's
        # unpickling took 6.2 CPU-s with it on, 0.8 with it off (in a heap of a million lists).
        collecting = gc.isenabled()
        gc.disable()
        try:
            await server.init()
        finally:
            if collecting:
                gc.enable()
        server.set_endpoint(self.endpoint)
        server.set_server_name("servicecast example press")
        if self.users is not None:
            server.iserver.set_user_manager(_Passwords(self.users))
            server.set_security_IDs(["Username"])
        if self.security is not None:
            await server.load_certificate(self.security[0])
            await server.load_private_key(self.security[1])
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        for uri in self.other_namespaces:
            await server.register_namespace(uri)
        ns = await server.register_namespace(NAMESPACE)
        machines = await server.nodes.objects.add_folder(ua.NodeId("Machines", ns), "Machines")
        press = self.press = await machines.add_object(ua.NodeId("Press7", ns), "Press7")
        await press.set_event_notifier([ua.EventNotifier.SubscribeToEvents])
        ident = await press.add_object(ua.NodeId("Press7.Identification", ns), "Identification")
        for name, value in (
            ("Manufacturer", ua.LocalizedText("Example Presses GmbH")),
            ("SerialNumber", self.serial),
            ("ProductInstanceUri", f"urn:example-presses:press:{self.serial}"),
        ):
            await ident.add_variable(ua.NodeId(f"Press7.Identification.{name}", ns), name, value)
        state = await press.add_object(
            ua.NodeId("Press7.MachineryBuildingBlocks.MachineryItemState", ns), "MachineryItemState"
        )
        self.state = await state.add_variable(
            ua.NodeId("Press7.MachineryBuildingBlocks.MachineryItemState.CurrentState", ns),
            "CurrentState",
            ua.LocalizedText("NotExecuting"),
        )
        monitoring = await press.add_object(ua.NodeId("Press7.Monitoring", ns), "Monitoring")
        self.variables = {}
        for name, sensor, start in (
            ("SpindleTemperature", "spindle_temp_c", 40.0),
            ("SpindleSpeed", "spindle_speed_rpm", 1200.0),
            ("Vibration", "vibration_mm_s", 1.5),
        ):
            node = await monitoring.add_variable(ua.NodeId(f"Press7.Monitoring.{name}", ns), name, start)
            self.variables[sensor] = (node, start)
        self.generator = await server.get_event_generator(ua.ObjectIds.AlarmConditionType, press)
        await server.start()

    async def _stop(self) -> None:
        # Refuse new connections before asyncua drops the open ones: it closes its listening socket last, so a
        # client that reconnects at once (asyncua's auto_reconnect, as the bridge's) got back in, and its
        # session's republish requests kept the stop busy past the 30 s `_call` waits.
        listening = self.server.bserver._server if self.server.bserver else None
        if listening is not None:
            listening.close()
        await self.server.stop()
        # asyncua's stop closes the sessions of open connections only: one whose client went away keeps its
        # timeout and subscription tasks, which a stopped loop left pending until the collector destroyed
        # them inside some later test ("Task was destroyed but it is pending!", logged as an error).
        left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    async def _change(self) -> None:
        self._step += 1
        now = datetime.now(UTC)
        for sensor, (node, start) in self.variables.items():
            value = round(start + (self._step % 50) * 0.25 + self._step * 1e-3, 6)
            await node.write_value(
                ua.DataValue(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=now)
            )
            self.changes.append(Change(sensor, value, now))
        if self._step % 10 == 0:
            text = STATES[3 if self._step % 20 else 2]
            value = ua.DataValue(
                ua.Variant(ua.LocalizedText(text), ua.VariantType.LocalizedText), SourceTimestamp=now
            )
            await self.state.write_value(value)
            self.changes.append(Change("machine_state", float(STATES.index(text)), now))

    async def _alarm(self, active: bool) -> None:
        event = self.generator.event
        event.ConditionName = ALARM
        event.SourceName = "Press7"
        event.Severity = 700 if active else 100
        event.Message = ua.LocalizedText(
            "Spindle temperature above 85 °C" if active else "Spindle temperature normal"
        )
        event.ActiveState = ua.LocalizedText("Active" if active else "Inactive")
        if hasattr(event, "ActiveState/Id"):
            setattr(event, "ActiveState/Id", active)
        await self.generator.trigger(time_attr=datetime.now(UTC))
        self.alarms += 1
