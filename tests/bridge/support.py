"""Bridge test helpers: a broker checking the machine's identity, the bridge as a process, the store."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asyncua import ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from prometheus_client import REGISTRY
from sqlalchemy import Engine, select

from fleet import credentials, registration, subprocesses
from fleet.tables import Machine, MachineEvent, Telemetry
from simulators.opcua_machine import MAP as EXAMPLE_MAP
from simulators.opcua_machine import MachineServer
from tests import services
from tests.ingest.support import REPO, wait_until

TENANT, MACHINE = "acme", "press-7"
INGEST_USER, INGEST_PASSWORD = credentials.DEFAULT_INGEST_USER, "ingest-secret"


LOADED_TIMEOUT_S = 60.0  # a test client's request timeout where what is tested is what is sent, not how soon


def values_notified() -> float:
    """Data change notifications the bridge's translators were handed in this process."""
    return REGISTRY.get_sample_value("servicecast_bridge_opcua_notifications_total", {"kind": "data"}) or 0.0


async def until(condition: Callable[[], object], what: str) -> None:
    """Wait (0.1 s a try, 60 s at most) until `condition()` holds; fail naming `what` if it never does."""
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


@dataclass
class Broker:
    """Mosquitto with per-machine passwords and the ACL that `machines broker-config` writes."""

    mosquitto: services.Mosquitto
    machine_url: str  # the bridge's own identity, acme/press-7
    ingest_url: str


def secured_broker(engine: Engine, workdir: Path) -> Broker:
    """Register acme/press-7, issue its credential, and start a Mosquitto that checks it."""
    registration.register_machines(
        engine=engine,
        machines=[{"tenant": TENANT, "machine": MACHINE, "machine_type": "press"}],
        granted_by="test",
    )
    issued = credentials.issue(engine=engine, tenant=TENANT, machine=MACHINE)
    workdir.mkdir(exist_ok=True)
    credentials.write_broker_config(
        engine=engine, out=workdir, ingest_user=INGEST_USER, ingest_password=INGEST_PASSWORD
    )
    auth = [
        "allow_anonymous false",
        f"password_file {workdir / credentials.PASSWORD_FILE}",
        f"acl_file {workdir / credentials.ACL_FILE}",
    ]
    broker = services.Mosquitto(workdir, auth=auth).start()
    user = issued.username.replace("/", "%2F")
    return Broker(
        broker,
        f"mqtt://{user}:{issued.password}@127.0.0.1:{broker.port}",
        f"mqtt://{INGEST_USER}:{INGEST_PASSWORD}@127.0.0.1:{broker.port}",
    )


STALL_S = 3.0  # a loaded machine's server: longer than asyncua's own 1 s probe, shorter than a request's 10 s


def interrupt(server: MachineServer, at: str, how: str) -> list[str]:
    """Once, on the server's own loop, when the bridge first reaches `at` of its start-up ("map check": the
    first node it checks, "alarm subscription": the alarm's monitored item), do `how`: "drop" closes the
    server's side of every connection, "end session" ends the bridge's session and keeps the connection,
    "stall" keeps the server's loop busy for STALL_S, "stall, then drop" does both in turn. What fired is
    listed in the list returned."""
    fired: list[str] = []

    def reached(request: object) -> bool:
        if at == "map check":
            return any(item.AttributeId == ua.AttributeIds.NodeClass for item in request.NodesToRead)
        return any(
            isinstance(item.RequestedParameters.Filter, ua.EventFilter) for item in request.ItemsToCreate
        )

    async def act(event: ServerItemCallback, _dispatcher: object) -> None:
        if fired or not event.is_external or not reached(event.request_params):
            return
        fired.append(f"{how} at the {at}")
        if how.startswith("stall"):
            time.sleep(STALL_S)  # blocks the loop as a starved process would
        if how.endswith("drop"):
            for transport in list(server.server.iserver.asyncio_transports):
                transport.close()
        elif how == "end session":
            for connection in list(server.server.bserver.clients):
                await connection.processor.session.close_session(True)

    kind = CallbackType.PreRead if at == "map check" else CallbackType.ItemSubscriptionCreated
    server.server.subscribe_server_callback(kind, act)
    return fired


def bridge_command(endpoint: str, map_file: Path, mqtt_url: str, buffer: Path, *args: str) -> list[str]:
    """`servicecast bridge opcua` with the options every bridge test gives."""
    return [
        sys.executable, "-m", "servicecast", "bridge", "opcua", "--endpoint", endpoint,
        "--map", str(map_file), "--mqtt-url", mqtt_url, "--buffer", str(buffer), *args,
    ]  # fmt: skip


class BridgeProcess:
    """`servicecast bridge opcua` as a real process, so that it can be killed with SIGKILL."""

    def __init__(
        self,
        workdir: Path,
        server: MachineServer,
        mqtt_url: str,
        *args: str,
        map_file: Path = EXAMPLE_MAP,
        **env: str,
    ) -> None:
        self.workdir = workdir
        self.command = bridge_command(
            server.endpoint, map_file, mqtt_url, workdir / "bridge-buffer.db", *args
        )
        self.env = {**os.environ, "SERVICECAST_LOG_LEVEL": "INFO", **env}
        self.process: subprocess.Popen | None = None
        self.runs = 0

    @property
    def log_path(self) -> Path:
        """The log of the current run."""
        return self.workdir / f"bridge-{self.runs}.log"

    def log(self) -> str:
        """What the current run has logged so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def start(self, wait_bridging: bool = True) -> BridgeProcess:
        """Start; by default wait until it has subscribed to the machine's nodes."""
        self.runs += 1
        with open(self.log_path, "wb") as log:
            self.process = subprocesses.popen(
                self.command,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait_bridging:
            wait_until(lambda: "bridging" in self.log() or self.process.poll() is not None, 60, "the bridge")
            assert self.process.poll() is None, f"bridge exited early:\n{self.log()}"
        return self

    def kill9(self) -> None:
        """SIGKILL: no flush, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM and the exit code; a bridge still running after `timeout` s fails the test."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop_quietly(self) -> None:
        """Make sure the process is gone (test teardown)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def stored_readings(engine: Engine) -> list[tuple[int, str, float, str]]:
    """(seq, sensor, value, ts) of every reading of acme/press-7, one row per sensor value."""
    query = (
        select(Telemetry.seq, Telemetry.ts, Telemetry.readings)
        .join(Machine, Telemetry.machine_id == Machine.id)
        .where(Machine.code == MACHINE)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [(seq, k, v, ts.isoformat(timespec="milliseconds")) for seq, ts, r in rows for k, v in r.items()]


def stored_events(engine: Engine) -> list[MachineEvent]:
    """Every event of acme/press-7, by seq."""
    with engine.connect() as conn:
        return list(conn.execute(select(MachineEvent).order_by(MachineEvent.seq)).all())
