"""Sends the buffer to the broker at QoS 1, in order, and deletes a message only after its PUBACK."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections import deque

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fleet import mqtt_loop
from fleet.settings import MqttEndpoint
from ingest.client import FATAL_CONNACK
from ingest.opcua import metrics
from ingest.opcua.buffer import Buffer

log = logging.getLogger(__name__)


class BrokerRefused(RuntimeError):
    """The broker refused our identity; retrying cannot help."""


class Publisher:
    """One paho client; the buffer holds what is unacknowledged, so any new connection sends it again."""

    def __init__(
        self,
        *,
        endpoint: MqttEndpoint,
        client_id: str,
        buffer: Buffer,
        protocol: str = "5",
        window: int = 100,
        keepalive_s: int = 30,
    ) -> None:
        self.endpoint = endpoint
        self.buffer = buffer
        self.window = window
        self.keepalive_s = keepalive_s
        self.fatal: str | None = None
        self.published = 0  # messages the broker acknowledged
        self._stopping = False
        self._flush_by: float | None = None  # monotonic deadline of a graceful stop
        self._connected = threading.Event()
        self._generation = 0
        self._acks: deque[int] = deque()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if protocol == "5" else MQTTProtocolVersion.MQTTv311,
        )
        if endpoint.username:
            self.client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            self.client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_publish = self._on_publish

    def wake(self) -> None:
        """Something was added to the buffer (call from the event loop)."""
        if self._wake is not None:
            self._wake.set()

    def stop(self, *, within: float) -> None:
        """Let `run` end: it sends what it can for at most `within` s; what is left stays in the buffer."""
        self._flush_by = time.monotonic() + within
        self.wake()

    async def run(self) -> None:
        """Send until stopped or cancelled; BrokerRefused when the broker will never take our identity."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=self.keepalive_s)
        self.client.loop_start()
        try:
            await self._send()
        finally:
            self._stopping = True
            self.client.disconnect()
            mqtt_loop.stop(self.client)
            metrics.BROKER_UP.set(0)

    async def _send(self) -> None:
        in_flight: dict[int, int] = {}  # mid -> buffer row id
        generation, last_sent = -1, 0
        while True:
            if self.fatal:
                raise BrokerRefused(self.fatal)
            if generation != self._generation:
                # A new connection: all that is unacknowledged goes again, oldest first (ingest dedups).
                generation, last_sent = self._generation, 0
                in_flight.clear()
            acked = []
            while self._acks:
                row = in_flight.pop(self._acks.popleft(), None)
                if row is not None:
                    acked.append(row)
            self.published += len(acked)  # before the delete: whoever sees the buffer empty sees it counted
            self.buffer.delete(acked)
            metrics.PUBLISHED.inc(len(acked))
            if self._connected.is_set() and len(in_flight) < self.window:
                for row, topic, payload in self.buffer.pending(last_sent, self.window - len(in_flight)):
                    info = self.client.publish(topic, payload, qos=1)
                    if info.rc != mqtt.MQTT_ERR_SUCCESS:
                        break  # the connection went away; the next one starts from the oldest again
                    in_flight[info.mid] = row
                    last_sent = row
            if self._flush_by is not None and (
                not self.buffer.count or not self._connected.is_set() or time.monotonic() >= self._flush_by
            ):
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=0.2)
            except TimeoutError:
                pass

    def _notify(self) -> None:
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            why = FATAL_CONNACK.get(reason_code.value)
            if why:
                self.fatal = f"{why} ({reason_code}); check the machine's credentials in the MQTT URL"
                client.disconnect()
                self._notify()
            else:
                log.warning("broker refused the connection: %s; retrying", reason_code)
            return
        self._generation += 1
        self._connected.set()
        metrics.BROKER_UP.set(1)
        log.info("connected to the broker at %s:%s", self.endpoint.host, self.endpoint.port)
        self._notify()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:  # noqa: ANN001
        self._connected.clear()
        self._generation += 1
        metrics.BROKER_UP.set(0)
        if not (self.fatal or self._stopping):
            log.warning("disconnected from the broker (%s); buffering on disk and reconnecting", reason_code)

    def _on_connect_fail(self, _client, _userdata) -> None:  # noqa: ANN001
        log.warning(
            "cannot reach the broker at %s:%s; buffering on disk", self.endpoint.host, self.endpoint.port
        )

    def _on_publish(self, _client, _userdata, mid, reason_code, _properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            # Not authorised for the topic (ACL) or the like: the message stays buffered and is sent again.
            log.error("the broker refused message %s: %s", mid, reason_code)
            return
        self._acks.append(mid)
        self._notify()
