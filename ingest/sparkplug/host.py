"""The Sparkplug B primary host: STATE birth and will, `spBv1.0/#`, rebirth requests, the batch writer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import orjson
from prometheus_client import Counter
from sqlalchemy import Engine

from fleet import sparkplug_state
from fleet.settings import MqttEndpoint, Settings
from ingest.client import MqttSource
from ingest.service import Ingester
from ingest.sparkplug.decode import NAMESPACE, rebirth_request
from ingest.sparkplug.mapping import Mapping

log = logging.getLogger(__name__)
NodeKey = sparkplug_state.NodeKey

REBIRTHS = Counter("servicecast_sparkplug_rebirth_requests", "NCMD Node Control/Rebirth requests sent")


def state_topic(host_id: str) -> str:
    """Where a Sparkplug 3.0 host publishes its STATE."""
    return f"{NAMESPACE}/STATE/{host_id}"


def state_payload(online: bool, timestamp_ms: int) -> bytes:
    """The Sparkplug 3.0 STATE payload: JSON with `online` and `timestamp` (ms)."""
    return orjson.dumps({"online": online, "timestamp": timestamp_ms})


def _offline_since(payload: bytes) -> int:
    """The timestamp of an offline STATE payload; -1 for an online one or one that is not a STATE."""
    try:
        state = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return -1
    if not isinstance(state, dict) or state.get("online") is not False:
        return -1
    stamp = state.get("timestamp")
    return stamp if type(stamp) is int else -1


class SparkplugSource(MqttSource):
    """An MQTT source that is also a primary host: STATE online when connected, offline as its will."""

    def __init__(self, *, host_id: str, pending: Callable[[], list[NodeKey]], **kwargs) -> None:
        super().__init__(subscription=f"{NAMESPACE}/#", **kwargs)
        self.host_id = host_id
        self.pending = pending
        self.state_ts = 0
        # The online STATE (network thread) and the offline one (close) are published under this lock, and
        # none online once closing: the last STATE the broker keeps is offline.
        self._state_lock = threading.Lock()
        self._closing = False
        self.client.on_pre_connect = self._on_pre_connect
        self._own_state = state_topic(host_id).encode()

    def _on_pre_connect(self, client, _userdata) -> None:
        # Each connection has a new STATE timestamp, carried by its will and its online STATE alike.
        self.state_ts = max(int(time.time() * 1000), self.state_ts + 1)
        client.will_set(state_topic(self.host_id), state_payload(False, self.state_ts), qos=1, retain=True)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        super()._on_connect(client, userdata, flags, reason_code, properties)
        if not reason_code.is_failure:
            with self._state_lock:
                if self._closing:
                    return
                # After the subscription, so that our own retained STATE ends as online for every reader.
                online = state_payload(True, self.state_ts)
                client.publish(state_topic(self.host_id), online, qos=1, retain=True)
            # A request committed as pending may never have been sent (a crash between commit and publish).
            try:
                pending = self.pending()
            except Exception as exc:  # the network thread must live on; the next connect retries
                log.error("cannot read the edge nodes waiting for a rebirth: %s", exc)
                return
            for group, edge_node in pending:
                self.request_rebirth(group, edge_node)

    def _on_message(self, client, userdata, message) -> None:
        if message._topic == self._own_state and (since := _offline_since(message.payload)) >= self.state_ts:
            self._online_again(client, since)
        super()._on_message(client, userdata, message)

    def _online_again(self, client, since: int) -> None:
        """Say online again, later than an offline STATE on our id (Sparkplug 3.0 asks for it)."""
        # Another host run with our id that stopped, or a client abusing the topic: edge nodes would hold
        # their data for a host that is here. An older one (a will of an earlier connection) is no news.
        with self._state_lock:
            if self._closing or not self.connected.is_set():
                return
            self.state_ts = max(int(time.time() * 1000), self.state_ts + 1, since + 1)
            client.publish(state_topic(self.host_id), state_payload(True, self.state_ts), qos=1, retain=True)
        log.warning("%s said offline while this host is connected: online again", state_topic(self.host_id))

    def request_rebirth(self, group: str, edge_node: str) -> None:
        """NCMD `Node Control/Rebirth` = true to one edge node."""
        REBIRTHS.inc()
        log.warning("asking %s/%s for a rebirth", group, edge_node)
        payload = rebirth_request(int(time.time() * 1000))
        self.client.publish(f"{NAMESPACE}/{group}/NCMD/{edge_node}", payload, qos=0)

    def close(self) -> None:
        """Say offline (a clean disconnect sends no will), then disconnect."""
        with self._state_lock:
            self._closing = True
            info = self.client.publish(
                state_topic(self.host_id), state_payload(False, self.state_ts), qos=1, retain=True
            )
        if self.connected.is_set():
            try:
                info.wait_for_publish(timeout=5)
            except (RuntimeError, ValueError) as exc:  # the connection went before paho's thread said so
                log.warning("offline STATE not sent: %s (a broker that saw the link go sends the will)", exc)
        super().close()


class SparkplugHost(Ingester):
    """An ingester whose source is a Sparkplug primary host and whose pipeline decodes Sparkplug B."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        endpoint: MqttEndpoint,
        mapping: Mapping,
        host_id: str,
        client_id: str | None = None,
    ) -> None:
        super().__init__(
            settings=settings,
            engine=engine,
            endpoint=endpoint,
            client_id=client_id,
            sparkplug=(mapping, host_id, settings.sparkplug_rebirth_interval_s),
        )
        self.source = SparkplugSource(
            host_id=host_id,
            pending=lambda: self._rebirth_pending(engine, host_id, mapping),
            endpoint=endpoint,
            inbox=self.inbox,
            client_id=client_id or f"servicecast-sparkplug-{host_id}",
            protocol=settings.mqtt_protocol,
            keepalive_s=settings.mqtt_keepalive_s,
            session_expiry_s=settings.mqtt_session_expiry_s,
        )
        self.writer.on_committed = self.source.ack
        # Asked after the commit that recorded them as pending, from this process (it holds the connection).
        self.writer.on_rebirth = self.source.request_rebirth

    @staticmethod
    def _rebirth_pending(engine: Engine, host_id: str, mapping: Mapping) -> list[NodeKey]:
        """Those of the map: a node since taken out of it (its state stays) is asked for nothing."""
        with engine.connect() as conn:
            return [node for node in sparkplug_state.rebirth_pending(conn, host_id) if mapping.knows(*node)]
