"""A simulated machine with an OPC UA server laid out as OPC UA for Machinery suggests (asyncua)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager

NAMESPACE = "urn:servicecast:example:press"
STATES = ("NotAvailable", "OutOfService", "NotExecuting", "Executing")
ALARM = "SpindleOverTemperature"
MAP = Path(__file__).with_name("opcua-machine.yaml")  # its bridge map: package data, the README example
log = logging.getLogger(__name__)


class _Passwords(UserManager):
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def get_user(self, iserver, username=None, password=None, certificate=None):  # noqa: ANN001, ANN201
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


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
        """Stop the server and its thread."""
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

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
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _start(self) -> None:
        server = self.server = Server()
        await server.init()
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
