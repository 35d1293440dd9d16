"""One identity per machine, on a real Mosquitto with the shipped config's auth settings and our files."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import Engine
from typer.testing import CliRunner

from fleet import contract, credentials, mqtt_loop, registry
from fleet.settings import get_settings
from servicecast.cli import app
from tests import services
from tests.ingest.support import (
    LOADED_S,
    REPO,
    START,
    in_process_ingester,
    quarantine_reasons,
    stored_keys,
    wait_until,
)

pytestmark = pytest.mark.mosquitto
INGEST_USER, INGEST_PASSWORD = credentials.DEFAULT_INGEST_USER, "ingest-secret"


class Client:
    """A paho MQTT 5 client that reports the broker's reason codes (CONNACK, PUBACK, SUBACK)."""

    def __init__(self, broker: services.Mosquitto, username: str, password: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5, reconnect_on_failure=False
        )
        self.client.username_pw_set(username, password)
        self.connack: mqtt.ReasonCode | None = None
        self.received: list[str] = []
        self.acks: dict[int, mqtt.ReasonCode] = {}
        self.answered, self.disconnected, self.acked = (
            threading.Event(),
            threading.Event(),
            threading.Condition(),
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.disconnected.set()
        self.client.on_publish = self._on_ack
        self.client.on_subscribe = lambda _c, _u, mid, codes, _p: self._on_ack(_c, _u, mid, codes[0], _p)
        self.client.on_message = lambda _c, _u, message: self.received.append(message.topic)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self.answered.wait(10), "no CONNACK"

    def _on_connect(self, _client, _userdata, _flags, reason_code, _properties) -> None:  # noqa: ANN001
        self.connack = reason_code
        self.answered.set()

    def _on_ack(self, _client, _userdata, mid, reason_code, _properties) -> None:  # noqa: ANN001
        with self.acked:
            self.acks[mid] = reason_code
            self.acked.notify_all()

    def _wait_ack(self, mid: int) -> mqtt.ReasonCode:
        with self.acked:
            assert self.acked.wait_for(lambda: mid in self.acks, 10), "no acknowledgement"
            return self.acks[mid]

    def publish(self, topic: str, payload: bytes) -> mqtt.ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        return self._wait_ack(self.client.publish(topic, payload, qos=1).mid)

    def subscribe(self, topic: str) -> mqtt.ReasonCode:
        """Subscribe at QoS 1 and return the SUBACK's reason code."""
        return self._wait_ack(self.client.subscribe(topic, qos=1)[1])

    def close(self) -> None:
        self.client.disconnect()
        mqtt_loop.stop(self.client)


@dataclass
class Secured:
    """A broker whose password and ACL files `servicecast machines broker-config` wrote from the database."""

    engine: Engine
    broker: services.Mosquitto
    passwords: dict[str, str]

    def connect(self, machine: str, password: str | None = None) -> Client:
        return Client(self.broker, f"acme/{machine}", password or self.passwords[machine])

    def cli(self, *args: str) -> str:
        """Run a `servicecast` command as an operator would; its standard output."""
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    def rewrite_and_reload(self) -> None:
        self.cli("machines", "broker-config", "--out", str(self.broker.workdir))
        self.broker.reload()


@pytest.fixture
def secured(sqlite_engine: Engine, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Secured]:
    if not services.mosquitto_available():
        services.unavailable("the mosquitto binary")
    workdir = tmp_path / "broker"
    workdir.mkdir()
    registry.add_customer(engine=sqlite_engine, tenant="acme")
    passwords = {}
    for code in ("m1", "m2"):
        registry.add_machine(engine=sqlite_engine, tenant="acme", code=code)
        passwords[code] = credentials.issue(engine=sqlite_engine, tenant="acme", machine=code).password
    credentials.write_broker_config(
        engine=sqlite_engine, out=workdir, ingest_user=INGEST_USER, ingest_password=INGEST_PASSWORD
    )
    shipped = REPO / "deploy" / "mosquitto.conf"
    auth = services.shipped_auth(shipped, workdir)
    assert "allow_anonymous false" in auth and len(auth) == 3
    # The shipped queue limit too: with the harness's `max_queued_messages 0`, Mosquitto 2.0.11 drops
    # the connection of a client right after refusing one of its QoS-1 publishes.
    queue = [line for line in shipped.read_text().splitlines() if line.startswith("max_queued_messages")]
    broker = services.Mosquitto(workdir, auth=auth, extra=queue).start()
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv(
        "SERVICECAST_MQTT_URL", f"mqtt://{INGEST_USER}:{INGEST_PASSWORD}@127.0.0.1:{broker.port}"
    )
    get_settings.cache_clear()
    yield Secured(sqlite_engine, broker, passwords)
    broker.stop()


def payload(seq: int, value: float) -> bytes:
    return contract.encode_payload(seq, START, {"temperature_c": value})


def test_a_machine_publishes_only_on_its_own_topics_and_reads_none(secured: Secured) -> None:
    ingest_url = f"mqtt://{INGEST_USER}:{INGEST_PASSWORD}@127.0.0.1:{secured.broker.port}"
    url = str(secured.engine.url)
    ingester = in_process_ingester(url, secured.engine, ingest_url, "ingest-1", ingest_shared_group="ingest")
    watcher = Client(secured.broker, INGEST_USER, INGEST_PASSWORD)
    m1, m2 = secured.connect("m1"), secured.connect("m2")
    try:
        assert watcher.subscribe("fleet/#") == "Granted QoS 1"
        m1.subscribe("fleet/#")  # granted, but the ACL lets no message through to it
        assert m1.publish(contract.telemetry_topic("acme", "m2"), payload(1, 99.0)) == "Not authorized"
        assert m1.publish(contract.events_topic("acme", "m2"), contract.encode_event(1, START, "E1")) == (
            "Not authorized"
        )
        assert m1.publish("fleet/globex/m1/telemetry", payload(1, 99.0)) == "Not authorized"
        assert not m1.publish(
            contract.events_topic("acme", "m1"), contract.encode_event(1, START, "E1")
        ).is_failure
        assert not m1.publish(contract.telemetry_topic("acme", "m1"), payload(1, 50.0)).is_failure
        # The broker handles one connection's packets in order: once the watcher has m1's last message,
        # none of the refused ones can still arrive.
        wait_until(lambda: len(watcher.received) == 2, LOADED_S, "m1's own messages at the watcher")
        assert not m2.publish(contract.telemetry_topic("acme", "m2"), payload(1, 60.0)).is_failure
        wait_until(lambda: len(watcher.received) == 3, LOADED_S, "m2's message at the watcher")
        # A delivery of m2's message to m1 would be queued ahead of this acknowledgement.
        assert not m1.publish(contract.telemetry_topic("acme", "m1"), payload(2, 50.0)).is_failure
        wait_until(lambda: len(stored_keys(secured.engine)) == 3, LOADED_S, "the readings in the store")
    finally:
        for client in (m1, m2, watcher):
            client.close()
        ingester.stop()
    assert (
        watcher.received
        == [
            "fleet/acme/m1/events",
            "fleet/acme/m1/telemetry",
            "fleet/acme/m2/telemetry",
            "fleet/acme/m1/telemetry",
        ][: len(watcher.received)]
    )
    assert m1.received == []
    assert sorted(stored_keys(secured.engine)) == [("m1", 1), ("m1", 2), ("m2", 1)]
    assert quarantine_reasons(secured.engine) == []


def test_a_revoked_credential_is_refused_at_connect_and_its_connection_dropped(secured: Secured) -> None:
    m1, m2 = secured.connect("m1"), secured.connect("m2")
    assert not m1.connack.is_failure and not m2.connack.is_failure
    try:
        assert "revoked" in secured.cli("machines", "credentials", "acme", "m1", "--revoke")
        secured.rewrite_and_reload()
        assert m1.disconnected.wait(10), "the revoked machine's open connection stayed up"
        assert not m2.disconnected.is_set()
        assert not m2.publish(contract.telemetry_topic("acme", "m2"), payload(1, 50.0)).is_failure
    finally:
        m1.close()
        m2.close()
    again = secured.connect("m1")
    again.close()
    assert again.connack == "Not authorized"


def test_a_rotated_credential_replaces_the_old_one(secured: Secured) -> None:
    connected = secured.connect("m1")
    output = secured.cli("machines", "credentials", "acme", "m1")
    rotated = re.search(r"^password: (\S+)$", output, re.M).group(1)
    assert rotated != secured.passwords["m1"]
    secured.rewrite_and_reload()
    assert connected.disconnected.wait(10), "the connection made with the old password stayed up"
    connected.close()
    old = secured.connect("m1")
    old.close()
    assert old.connack == "Not authorized"
    new = secured.connect("m1", rotated)
    try:
        assert not new.connack.is_failure
        assert not new.publish(contract.telemetry_topic("acme", "m1"), payload(1, 50.0)).is_failure
    finally:
        new.close()


def test_shipped_production_config_is_accepted_by_mosquitto(tmp_path):
    if not services.mosquitto_available():
        services.unavailable("the mosquitto binary")
    shipped = (REPO / "deploy" / "mosquitto.conf").read_text().splitlines()
    keep = [
        line
        for line in shipped
        if line.strip()
        and not line.startswith("#")
        and line.split()[0] not in ("listener", "certfile", "keyfile", "cafile", "password_file", "acl_file")
        and line != "allow_anonymous false"
    ]
    keep = [
        f"persistence_location {tmp_path}/" if line.startswith("persistence_location") else line
        for line in keep
    ]
    assert any(line.startswith("max_queued_messages") for line in keep)
    assert "persistence true" in keep
    broker = services.Mosquitto(tmp_path, extra=keep, replace_defaults=True).start()
    try:
        assert broker.process.poll() is None
    finally:
        broker.stop()
