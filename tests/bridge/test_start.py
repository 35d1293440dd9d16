"""What the bridge says at start: a node missing on the server, a refused OPC UA login, a bad map."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from asyncua.crypto import cert_gen
from cryptography.x509.oid import ExtendedKeyUsageOID
from paho.mqtt.enums import CallbackAPIVersion

from fleet import subprocesses
from fleet.settings import MqttEndpoint
from ingest.opcua import bridge, mapping
from ingest.opcua.buffer import Buffer
from ingest.opcua.publisher import BrokerRefused, Publisher
from simulators.opcua_machine import MachineServer
from tests import services
from tests.bridge.support import EXAMPLE_MAP, bridge_command
from tests.ingest.support import REPO, wait_until

MISSING = "nsu=urn:servicecast:example:press;s=Press7.Monitoring.OilPressure"


def run_bridge(server: MachineServer, map_file: Path, tmp_path: Path, *args: str, **env: str):
    """Run the bridge to its exit (the broker is never reached: nothing listens on its port)."""
    return subprocess.run(
        bridge_command(
            server.endpoint,
            map_file,
            f"mqtt://127.0.0.1:{services.free_port()}",
            tmp_path / "buffer.db",
            *args,
        ),
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def machine() -> Iterator[MachineServer]:
    server = MachineServer(port=services.free_port()).start()
    yield server
    server.stop()


def test_a_node_missing_on_the_server_stops_the_bridge_naming_it(machine: MachineServer, tmp_path) -> None:
    text = EXAMPLE_MAP.read_text().replace(
        "nsu=urn:servicecast:example:press;s=Press7.Monitoring.Vibration", MISSING
    )
    broken = tmp_path / "map.yaml"
    broken.write_text(
        text.replace("nsu=urn:servicecast:example:press;s=Press7\n", "nsu=urn:nowhere;s=Press7\n")
    )
    result = run_bridge(machine, broken, tmp_path)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("servicecast: the server has no node ")
    assert f"{MISSING} (BadNodeIdUnknown)" in last
    assert "nsu=urn:nowhere;s=Press7 (namespace urn:nowhere is not on the server)" in last
    assert machine.endpoint in last


def test_a_refused_opcua_login_is_fatal_and_named(tmp_path) -> None:
    server = MachineServer(port=services.free_port(), users={"bridge": "s3cret"}).start()
    try:
        result = run_bridge(
            server, EXAMPLE_MAP, tmp_path, "--user", "bridge", SERVICECAST_OPCUA_PASSWORD="wrong"
        )
    finally:
        server.stop()
    assert result.returncode == 1, result.stderr
    assert f"the OPC UA server at {server.endpoint} refused the bridge" in result.stderr


def test_the_example_map_is_valid_and_maps_a_machinery_style_machine() -> None:
    the_map = mapping.load(EXAMPLE_MAP)
    assert (the_map.tenant, the_map.machine) == ("acme", "press-7")
    assert set(the_map.identification) == {"manufacturer", "serial_number", "product_instance_uri"}
    assert the_map.variables[0].values == {
        "NotAvailable": 0,
        "OutOfService": 1,
        "NotExecuting": 2,
        "Executing": 3,
    }
    assert the_map.alarms[0].codes == {"SpindleOverTemperature": "spindle_overtemp"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tenant": "a/b"}, "tenant 'a/b'"),
        ({"machine": "m1\n"}, "machine 'm1\\\\n'"),
        ({"variables": [{"node": "ns=2;s=X", "sensor": "bad name"}]}, "variables[0].sensor 'bad name'"),
        (
            {"variables": [{"node": "Press7.X", "sensor": "x"}]},
            "variables[0].node: 'Press7.X' is not an OPC UA",
        ),
        (
            {"variables": [{"node": "ns=2;s=X", "sensor": "x", "sampling_interval_ms": 0}]},
            "sampling interval 0",
        ),
        ({"alarms": [{"source": "ns=2;s=X", "codes": {"A": "bad code!"}}]}, "alarms[0].codes.A 'bad code!'"),
    ],
)
def test_a_bad_map_is_refused_with_the_entry_named(change: dict, message: str) -> None:
    raw = {"tenant": "acme", "machine": "m1", "variables": [{"node": "ns=2;s=X", "sensor": "x"}], **change}
    with pytest.raises(mapping.MapError, match=message.replace("[", r"\[").replace("]", r"\]")):
        mapping.parse(raw)


def published_events(
    broker: services.Mosquitto, server: MachineServer, tmp_path: Path, *args: str, **env: str
):
    """Run the bridge until it has published the machine's identification event; that event's JSON."""
    got: list[bytes] = []
    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2)
    subscriber.on_message = lambda _c, _u, message: got.append(message.payload)
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.subscribe("fleet/acme/press-7/events", qos=1)
    subscriber.loop_start()
    process = subprocesses.popen(
        bridge_command(server.endpoint, EXAMPLE_MAP, broker.url, tmp_path / "buffer.db", *args),
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: got or process.poll() is not None, 30, "the identification event")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=60)
        subscriber.loop_stop()
        subscriber.disconnect()
    assert got, stderr
    return json.loads(got[0])


@pytest.mark.mosquitto
def test_user_and_password_log_in(mosquitto: services.Mosquitto, tmp_path) -> None:
    server = MachineServer(port=services.free_port(), users={"bridge": "s3cret"}).start()
    try:
        event = published_events(
            mosquitto, server, tmp_path, "--user", "bridge", SERVICECAST_OPCUA_PASSWORD="s3cret"
        )
    finally:
        server.stop()
    assert event["identification"]["serial_number"] == "SN-4711"


def certificate(tmp_path: Path, name: str, uri: str, use) -> tuple[str, str]:  # noqa: ANN001
    """A self-signed certificate (DER) and its key (PEM) in tmp_path: (certificate, key)."""
    key, cert = tmp_path / f"{name}-key.pem", tmp_path / f"{name}-cert.der"
    asyncio.run(cert_gen.setup_self_signed_certificate(key, cert, uri, socket.gethostname(), [use], {}))
    return str(cert), str(key)


def secured_machine(tmp_path: Path) -> tuple[MachineServer, str]:
    """The press accepting only Basic256Sha256 SignAndEncrypt, not started; and its certificate."""
    server_cert, server_key = certificate(
        tmp_path, "server", "urn:servicecast:example:press", ExtendedKeyUsageOID.SERVER_AUTH
    )
    return MachineServer(port=services.free_port(), security=(server_cert, server_key)), server_cert


@pytest.mark.mosquitto
def test_basic256sha256_sign_and_encrypt(mosquitto: services.Mosquitto, tmp_path) -> None:
    server, server_cert = secured_machine(tmp_path)
    client_cert, client_key = certificate(
        tmp_path, "client", "urn:servicecast:opcua-bridge", ExtendedKeyUsageOID.CLIENT_AUTH
    )
    server.start()
    try:
        security = f"Basic256Sha256,SignAndEncrypt,{client_cert},{client_key},{server_cert}"
        event = published_events(mosquitto, server, tmp_path, "--security", security)
    finally:
        server.stop()
    assert event["identification"]["manufacturer"] == "Example Presses GmbH"


def test_a_security_key_file_that_is_missing_stops_the_bridge_naming_it(tmp_path) -> None:
    # A typo in --security is no server away: retrying ('cannot reach the OPC UA server') cannot fix it.
    server, server_cert = secured_machine(tmp_path)
    client_cert, _ = certificate(
        tmp_path, "client", "urn:servicecast:opcua-bridge", ExtendedKeyUsageOID.CLIENT_AUTH
    )
    missing = tmp_path / "no-such-key.pem"
    server.start()
    try:
        security = f"Basic256Sha256,SignAndEncrypt,{client_cert},{missing},{server_cert}"
        result = run_bridge(server, EXAMPLE_MAP, tmp_path, "--security", security)
    finally:
        server.stop()
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"servicecast: cannot read {missing}: No such file or directory"
    )
    assert "cannot reach the OPC UA server" not in result.stderr


def test_a_broker_that_refuses_the_bridge_stops_it_while_the_opcua_server_is_unreachable(tmp_path) -> None:
    # The machine is off (nothing listens on its port), so the bridge keeps retrying OPC UA; the broker
    # refuses its identity meanwhile. That refusal is fatal: the bridge must stop, not retry OPC UA forever.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    refusing = threading.Thread(target=_refuse_every_client, args=(listener,), daemon=True)
    refusing.start()
    buffer = Buffer(tmp_path / "buffer.db", max_messages=100)
    publisher = Publisher(
        endpoint=MqttEndpoint(f"mqtt://127.0.0.1:{port}"), client_id="refused", buffer=buffer, protocol="5"
    )
    access = bridge.ServerAccess(endpoint=f"opc.tcp://127.0.0.1:{services.free_port()}")
    the_map = mapping.load(EXAMPLE_MAP)

    async def bounded() -> BaseException | None:
        """How the bridge ended, or None if it still ran after 20 s (then it is cancelled)."""
        task = asyncio.create_task(
            bridge.run(access=access, mapping=the_map, buffer=buffer, publisher=publisher)
        )
        await asyncio.wait({task}, timeout=20)
        if task.done():
            return task.exception()
        task.cancel()
        await asyncio.wait({task})
        return None

    try:
        ended = asyncio.run(bounded())
        assert ended is not None, "the bridge still retries the OPC UA server after the broker refused it"
        assert isinstance(ended, BrokerRefused) and "not authorised" in str(ended), repr(ended)
    finally:
        listener.close()
        buffer.close()


def _refuse_every_client(listener: socket.socket) -> None:
    """An MQTT 5 broker that answers every CONNECT with CONNACK 0x87 (not authorized)."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # closed by the test
        with conn:
            conn.recv(1024)
            conn.sendall(bytes([0x20, 0x03, 0x00, 0x87, 0x00]))
            conn.recv(1024)  # until paho hangs up
