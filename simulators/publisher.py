"""A QoS-1 MQTT publisher that knows which messages the broker acknowledged."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fleet import mqtt_loop
from fleet.settings import MqttEndpoint

WINDOW_TIMEOUT_S = 300.0  # how long the broker may acknowledge nothing before the publisher gives up


class Publisher:
    """paho-mqtt 2 publisher with a large in-flight window; `wait()` blocks until every PUBACK is in."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str = "",
        protocol: str = "5",
        qos: int = 1,
        max_inflight: int = 1000,
        ack_timeout_s: float = WINDOW_TIMEOUT_S,
    ) -> None:
        endpoint = MqttEndpoint(url)
        self.qos = qos
        self.where = f"the broker at {endpoint.host}:{endpoint.port}"
        self.ack_timeout_s = ack_timeout_s
        self.sent: list[mqtt.MQTTMessageInfo] = []
        self._window = threading.BoundedSemaphore(max_inflight)
        self._acks = threading.Condition()
        self._published = self._acked = 0
        self._connected = threading.Event()
        self._answered = threading.Event()  # a CONNACK came, accepting or refusing
        self.refusal: str | None = None
        v5 = protocol == "5"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else not client_id,
        )
        if endpoint.username:
            self.client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            self.client.tls_set()
        # The semaphore is the in-flight window: paho's own limit would rescan every message in flight on
        # each PUBACK (`_update_inflight`), which halved the publish rate at a window of 1000.
        self.client.max_inflight_messages_set(0)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self._connected.clear()
        self.client.on_publish = self._on_publish
        self.client.connect_async(endpoint.host, endpoint.port, keepalive=30)
        self.client.loop_start()
        answered = self._answered.wait(15)
        if not answered or self.refusal:
            mqtt_loop.stop(self.client)
            where = self.where
            raise ConnectionError(f"{where} {self.refusal}" if answered else f"cannot connect to {where}")

    def publish(self, topic: str, payload: bytes, *, track: bool = True) -> mqtt.MQTTMessageInfo:
        """Queue one message; paho resends it after a reconnect until the broker acknowledges it.

        With `track=False` the caller keeps the returned info itself (long streams must not grow `sent`).
        It waits while a whole window of messages is unacknowledged.
        """
        self._acquire_window()
        with self._acks:
            self._published += 1
        info = self.client.publish(topic, payload, qos=self.qos)
        if track:
            self.sent.append(info)
        return info

    def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> int:
        """Publish (topic, payload) pairs; returns how many."""
        n = 0
        for topic, payload in messages:
            self.publish(topic, payload)
            n += 1
        return n

    @property
    def acked_count(self) -> int:
        """PUBACKs received so far."""
        return self._acked

    def acked(self) -> list[bool]:
        """Per message sent, whether the broker acknowledged it."""
        return [_acknowledged(info) for info in self.sent]

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the broker acknowledged everything published, and `acked()` says so; False on
        timeout."""
        deadline = time.monotonic() + timeout
        with self._acks:
            if not self._acks.wait_for(lambda: self._acked >= self._published, timeout):
                return False
        # paho calls on_publish before it marks the message acknowledged: the last may not be marked yet.
        return all(_acknowledged(info, wait_s=max(0.0, deadline - time.monotonic())) for info in self.sent)

    def _acquire_window(self) -> None:
        # In slices: a broker that refuses the reconnect (password changed, client banned) ends the wait.
        deadline = time.monotonic() + self.ack_timeout_s
        while not self._window.acquire(timeout=max(0.0, min(1.0, deadline - time.monotonic()))):
            if self.refusal:
                raise ConnectionError(f"the broker {self.refusal}")
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self.where} stopped acknowledging: nothing acknowledged for {self.ack_timeout_s:g} s"
                )

    def _on_connect(
        self, _client: object, _userdata: object, _flags: object, reason: object, *_: object
    ) -> None:
        # A refusal (bad login, not authorised, banned) is final: paho would retry it for ever, silently.
        self.refusal = f"refused the connection: {reason}" if getattr(reason, "is_failure", False) else None
        if self.refusal is None:
            self._connected.set()
        self._answered.set()

    def _on_publish(self, *_args: object) -> None:
        with self._acks:
            self._acked += 1
            self._acks.notify_all()
        self._window.release()

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        mqtt_loop.stop(self.client)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _acknowledged(info: mqtt.MQTTMessageInfo, *, wait_s: float = 0.0) -> bool:
    """Whether paho marked the message acknowledged, waiting up to `wait_s` for it."""
    # is_published() raises for a message queued while disconnected, though paho sends it after reconnecting.
    if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
        raise ValueError("paho refused the message: its queue is full")
    with info._condition:
        return info._condition.wait_for(lambda: info._published, wait_s)
