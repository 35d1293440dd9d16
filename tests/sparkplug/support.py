"""A test edge node: payloads encoded by pysparkplug (an independent implementation), sent with paho 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pysparkplug as spb
from paho.mqtt.enums import CallbackAPIVersion

from fleet import mqtt_loop, subprocesses
from fleet.settings import MqttEndpoint, Settings
from ingest.pipeline import Pipeline
from ingest.sparkplug.host import SparkplugHost
from ingest.sparkplug.mapping import Mapping
from ingest.sparkplug.pipeline import SparkplugPipeline
from tests.ingest.support import LOADED_S, REPO, START_S, wait_until

GROUP, NODE, DEVICE = "plant1", "line4", "press-7"
MAP = {
    "machines": [
        {
            "group": GROUP,
            "edge_node": NODE,
            "device": DEVICE,
            "tenant": "acme",
            "machine": "m-000",
            "sensors": {"Spindle/Temperature": "temperature_c", "Spindle/Vibration": "vibration_mm_s"},
            "events": {"Alarms/Overtemp": {"code": "E_OVERTEMP", "severity": "critical"}},
        }
    ]
}
ALIASES = {"Spindle/Temperature": 10, "Spindle/Vibration": 11, "Alarms/Overtemp": 12}
T0 = 1_795_000_000_000  # ms, 2026-11-18


class EdgeNode:
    """One edge node with one device; `seq` and `bd_seq` are under the test's control."""

    def __init__(self, url: str, *, qos: int = 1) -> None:
        endpoint = MqttEndpoint(url)
        self.qos = qos
        self.seq = 0
        self.bd_seq = 0
        self.commands: list[tuple[str, bytes]] = []
        self.states: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-{NODE}")
        self.client.on_message = self._on_message
        self.client.connect(endpoint.host, endpoint.port)
        self.client.subscribe([(f"spBv1.0/{GROUP}/NCMD/{NODE}", 1), ("spBv1.0/STATE/+", 1)])
        self.client.loop_start()

    def _on_message(self, _client, _userdata, message) -> None:
        with self._lock:
            if "/STATE/" in message.topic:
                self.states.append((message.topic, message.payload, message.retain))
            else:
                self.commands.append((message.topic, message.payload))

    def rebirth_requests(self) -> int:
        """NCMDs received that ask for a rebirth, decoded by pysparkplug."""
        with self._lock:
            raw = [payload for _, payload in self.commands]
        count = 0
        for payload in raw:
            for metric in spb.NCmd.decode(payload).metrics:
                count += metric.name == "Node Control/Rebirth" and metric.value is True
        return count

    def _send(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=self.qos).wait_for_publish(10)

    def _next(self) -> int:
        seq, self.seq = self.seq, (self.seq + 1) % 256
        return seq

    def birth(self, ts: int, values: dict[str, float] | None = None) -> None:
        """NBIRTH (seq 0, bdSeq unless it is None, rebirth control) then DBIRTH with every metric named and
        aliased."""
        self.seq = 0
        control = spb.Metric(ts, "Node Control/Rebirth", spb.DataType.BOOLEAN, value=False)
        bd_seq = (
            () if self.bd_seq is None else (spb.Metric(ts, "bdSeq", spb.DataType.INT64, value=self.bd_seq),)
        )
        node = spb.NBirth(timestamp=ts, seq=self._next(), metrics=(*bd_seq, control))
        self._send(f"spBv1.0/{GROUP}/NBIRTH/{NODE}", node.encode())
        values = values or {"Spindle/Temperature": 60.0, "Spindle/Vibration": 2.0}
        metrics = [
            spb.Metric(ts, name, spb.DataType.DOUBLE, value=values.get(name, 0.0), alias=alias)
            for name, alias in ALIASES.items()
            if name != "Alarms/Overtemp"
        ]
        metrics.append(spb.Metric(ts, "Alarms/Overtemp", spb.DataType.BOOLEAN, value=False, alias=12))
        device = spb.DBirth(timestamp=ts, seq=self._next(), metrics=tuple(metrics))
        self._send(f"spBv1.0/{GROUP}/DBIRTH/{NODE}/{DEVICE}", device.encode())

    def data(self, ts: int, temperature: float, *, alarm: bool = False, historical: bool = False) -> None:
        """DDATA by alias only, as the specification asks."""
        metrics = [
            spb.Metric(ts, None, spb.DataType.DOUBLE, value=temperature, alias=10, is_historical=historical),
            spb.Metric(ts, None, spb.DataType.DOUBLE, value=2.5, alias=11, is_historical=historical),
        ]
        if alarm:
            metrics.append(spb.Metric(ts, None, spb.DataType.BOOLEAN, value=True, alias=12))
        self.ddata(ts, metrics)

    def ddata(self, ts: int, metrics: list[spb.Metric]) -> None:
        """DDATA of the device with these metrics, in the node's seq."""
        payload = spb.DData(timestamp=ts, seq=self._next(), metrics=tuple(metrics))
        self._send(f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}", payload.encode())

    def ndata(self, ts: int, metrics: list[spb.Metric]) -> None:
        """NDATA of the node itself with these metrics, in the node's seq."""
        payload = spb.NData(timestamp=ts, seq=self._next(), metrics=tuple(metrics))
        self._send(f"spBv1.0/{GROUP}/NDATA/{NODE}", payload.encode())

    def device_death(self, ts: int) -> None:
        """DDEATH of the device (in the node's seq)."""
        payload = spb.DDeath(timestamp=ts, seq=self._next())
        self._send(f"spBv1.0/{GROUP}/DDEATH/{NODE}/{DEVICE}", payload.encode())

    def death(self, bd_seq: int | None) -> None:
        """NDEATH with this bdSeq (the broker would send it as the node's will); None: without one (an empty
        protobuf, which pysparkplug cannot make)."""
        metric = spb.Metric(None, "bdSeq", spb.DataType.INT64, value=bd_seq)
        payload = b"" if bd_seq is None else spb.NDeath(timestamp=None, bd_seq_metric=metric).encode()
        self._send(f"spBv1.0/{GROUP}/NDEATH/{NODE}", payload)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        mqtt_loop.stop(self.client)


class RecordingEdgeNode(EdgeNode):
    """The same edge node without a broker: its messages are kept in `sent` for a pipeline to store."""

    def __init__(self) -> None:
        self.qos, self.seq, self.bd_seq = 1, 0, 0
        self.sent: list[tuple[str, bytes]] = []

    def _send(self, topic: str, payload: bytes) -> None:
        self.sent.append((topic, payload))

    def take(self) -> list[tuple[str, bytes, float]]:
        """What was sent since the last take, as the pipeline's raw messages."""
        out = [(topic, payload, time.time()) for topic, payload in self.sent]
        self.sent.clear()
        return out


def sparkplug_pipeline(
    engine, host_id: str = "scada", *, also: list[dict] = ()
) -> tuple[SparkplugPipeline, list[tuple[str, str]]]:
    """A Sparkplug pipeline on this store with the test map (and the entries `also`); the list receives its
    rebirth requests."""
    rebirths: list[tuple[str, str]] = []
    pipeline = SparkplugPipeline(
        pipeline=Pipeline(engine=engine),
        mapping=Mapping.from_dict({"machines": [*MAP["machines"], *also]}),
        host_id=host_id,
        on_rebirth=lambda group, node: rebirths.append((group, node)),
    )
    return pipeline, rebirths


def in_process_host(
    database_url: str, engine, mqtt_url: str, host_id: str = "scada", **overrides: object
) -> SparkplugHost:
    """A Sparkplug host in this process, subscribed (`overrides`: Settings fields beside the URLs)."""
    settings = Settings(database_url=database_url, mqtt_url=mqtt_url, **overrides)
    host = SparkplugHost(
        settings=settings,
        engine=engine,
        endpoint=MqttEndpoint(mqtt_url),
        mapping=Mapping.from_dict(MAP),
        host_id=host_id,
        client_id=f"sparkplug-{host_id}",
    )
    host.start()
    wait_until(host.source.subscribed.is_set, LOADED_S, "the Sparkplug host to subscribe")
    return host


class HostProcess:
    """The host as a real process (`python -m servicecast.sparkplug_cli`), so that it can be SIGKILLed."""

    def __init__(self, workdir: Path, *, database_url: str, mqtt_url: str, map_file: Path) -> None:
        self.workdir, self.map_file, self.runs = workdir, map_file, 0
        self.env = {**os.environ, "SERVICECAST_DATABASE_URL": database_url, "SERVICECAST_MQTT_URL": mqtt_url}
        self.env["SERVICECAST_LOG_LEVEL"] = "INFO"
        self.process: subprocess.Popen | None = None

    def log(self) -> str:
        """This run's log."""
        path = self.workdir / f"host-{self.runs}.log"
        return path.read_text() if path.exists() else ""

    def start(self) -> None:
        """Start and wait for the subscription."""
        self.runs += 1
        command = [sys.executable, "-m", "servicecast.sparkplug_cli", "--map", str(self.map_file)]
        with open(self.workdir / f"host-{self.runs}.log", "wb") as out:
            self.process = subprocesses.popen(
                [*command, "--host-id", "scada"], cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        wait_until(
            lambda: "subscribed to" in self.log() or self.process.poll() is not None, START_S, "subscribe"
        )
        assert self.process.poll() is None, self.log()

    def kill9(self) -> None:
        """SIGKILL."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM; a host still running after `timeout` s is killed and fails the test (a hang is a bug)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError(
                    f"the host did not exit within {timeout} s of SIGTERM:\n{self.log()}"
                ) from None
