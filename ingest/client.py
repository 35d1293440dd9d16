"""The MQTT side of the ingester: paho-mqtt 2 with a persistent session and manual acknowledgements."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleet import mqtt_loop
from fleet.settings import MqttEndpoint
from ingest import metrics
from ingest.inbox import Inbox
from ingest.schemas import Envelope

log = logging.getLogger(__name__)

# A PUBACK: fixed header, remaining length 2, packet id (success, as in MQTT 3.1.1 and 5).
_PUBACK = struct.Struct("!BBH")

# CONNACK reason codes that retrying cannot fix (MQTT 5 numbering; paho maps 3.1.1 codes 4 and 5 onto them).
FATAL_CONNACK = {
    133: "the broker rejected the client id",
    134: "the broker rejected the user name or password",
    135: "the broker says this client is not authorised",
    138: "the broker has banned this client",
    140: "the broker rejected the authentication method",
}
SESSION_TAKEN_OVER = 142  # said by MQTT 5 brokers that follow 3.1.4-3; by Mosquitto from 2.0.15 on only
# A connection the broker closes this soon after opening it, without a DISCONNECT saying why and while it
# still accepts connections, counts towards a suspected client-id takeover: Mosquitto closes the older of two
# connections with one id that way under MQTT 3.1.1, and under MQTT 5 too before 2.0.15 (mosquitto#2607), so
# the rule holds for both. A broker that restarts closes its listener first, but one back before the probe,
# or a middlebox dropping the connection, looks the same.
SHORT_SESSION_S = 10.0
PROBE_TIMEOUT_S = 2.0
TAKEOVERS_BEFORE_EXIT = 5


class MqttSource:
    """Subscribes with QoS 1, puts each message on a bounded queue, and acks only what it is told to."""

    def __init__(
        self,
        *,
        endpoint: MqttEndpoint,
        inbox: Inbox,
        client_id: str,
        subscription: str,
        protocol: str = "5",
        keepalive_s: int = 30,
        session_expiry_s: int = 3600,
    ) -> None:
        self.endpoint = endpoint
        self.inbox = inbox
        self.subscription = subscription
        self.keepalive_s = keepalive_s
        self.session_expiry_s = session_expiry_s
        self.v5 = protocol == "5"
        self.client_id = client_id
        self.generation = 0
        self.connections = 0
        self.fatal: str | None = None
        self.short_sessions = 0  # connections in a row that the broker closed within SHORT_SESSION_S
        self._connected_at = 0.0
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.failed = threading.Event()
        self._receiving = True
        self._started = False
        self._full_logged = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=None if self.v5 else False,
            protocol=MQTTProtocolVersion.MQTTv5 if self.v5 else MQTTProtocolVersion.MQTTv311,
            manual_ack=True,
        )
        if endpoint.username:
            self.client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            self.client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        """Connect in the background; paho reconnects with backoff from then on."""
        properties = None
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)
            # Without an expiry the broker ends the session at disconnect and drops what was queued for us.
            properties.SessionExpiryInterval = self.session_expiry_s
            # The broker never has more unacked messages in flight to us than the queue can hold.
            properties.ReceiveMaximum = min(self.inbox.maxsize, 65_535)
        self.client.connect_async(
            self.endpoint.host,
            self.endpoint.port,
            keepalive=self.keepalive_s,
            clean_start=False if self.v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._started = True
        self.client.loop_start()

    @property
    def network_alive(self) -> bool:
        """Whether paho's network thread runs (or has not been started yet). An exception in a callback ends
        it, and so does a disconnect; nothing is received or acknowledged by the broker from then on."""
        return not self._started or self.client._thread is not None  # paho-mqtt 2.x (pinned <3) internal

    def stop_receiving(self) -> None:
        """Leave new messages unacked from now on; the broker keeps them for the next session."""
        self._receiving = False
        # paho's thread may wait in `put` for a writer that died or gave up, and `close` joins that thread.
        self.inbox.close()

    def close(self) -> None:
        """Send what acks are pending, disconnect cleanly and stop the network thread."""
        self.client.disconnect()
        mqtt_loop.stop(self.client)

    def ack(self, batch: list[Envelope]) -> None:
        """Acknowledge committed messages that arrived on the current connection."""
        generation = self.generation
        # A message from an earlier connection is redelivered by the broker; acking its old id is wrong.
        current = [e for e in batch if e.qos and e.generation == generation]
        mids = [e.mid for e in current if e.qos == 1]
        if mids:
            # One queued write for the batch's PUBACKs: `client.ack` queues each alone and wakes paho's loop
            # with a syscall per message, and each syscall hands the GIL to the network thread and back.
            pubacks = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
            self.client._packet_queue(mqtt.PUBACK, pubacks, 0, 1)  # paho-mqtt 2.x (pinned <3) internal
        for envelope in current:
            if envelope.qos == 2:
                self.client.ack(envelope.mid, envelope.qos)

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            why = FATAL_CONNACK.get(reason_code.value)
            if why:
                self.fatal = f"{why} ({reason_code}); check the credentials in SERVICECAST_MQTT_URL"
                log.error("cannot connect to %s:%s: %s", self.endpoint.host, self.endpoint.port, self.fatal)
                self.failed.set()
                client.disconnect()
            else:
                log.warning("broker refused the connection: %s; retrying", reason_code)
            return
        self.generation += 1
        self.connections += 1
        self._connected_at = time.monotonic()
        if self.connections > 1:
            metrics.RECONNECTS.inc()
        log.info(
            "connected to %s:%s (session present: %s), subscribing to %s",
            self.endpoint.host,
            self.endpoint.port,
            _flags.session_present,
            self.subscription,
        )
        client.subscribe(self.subscription, qos=1)
        self.connected.set()

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties) -> None:
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:
            codes = ", ".join(failed)
            self.fatal = f"the broker refused subscribing to {self.subscription} ({codes}); check its ACL"
            log.error("%s", self.fatal)
            self.failed.set()
            return
        log.info("subscribed to %s", self.subscription)
        self.subscribed.set()

    @property
    def takeover_suspected(self) -> bool:
        """Whether the broker keeps closing our connections, as it does when another client has our id."""
        settled = self.connected.is_set() and time.monotonic() - self._connected_at >= SHORT_SESSION_S
        return self.short_sessions > 0 and not settled

    def _on_disconnect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        self.subscribed.clear()
        if not self._receiving or self.failed.is_set():
            return
        if was_connected:
            self._count_short_session(client, _flags, reason_code)
        if not self.failed.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason_code)

    def _count_short_session(self, client, flags, reason_code) -> None:
        """Count a connection closed as a takeover closes it; give up after too many in a row."""
        taken_over = reason_code.value == SESSION_TAKEN_OVER
        if not taken_over and not self._looks_taken_over(flags, reason_code):
            self.short_sessions = 0
            return
        self.short_sessions += 1
        metrics.SUSPECTED_TAKEOVERS.inc()
        why = (
            "the broker says another client took over the session"
            if taken_over
            else f"the broker closed the connection within {SHORT_SESSION_S:.0f} s of opening it"
        )
        log.warning(
            "%s (%d in a row): is another client connected with the client id %r?",
            why,
            self.short_sessions,
            self.client_id,
        )
        if self.short_sessions >= TAKEOVERS_BEFORE_EXIT:
            self.fatal = (
                f"{why}, {self.short_sessions} times in a row, as a broker does when another client connects "
                f"with the client id {self.client_id!r}: give each ingester its own --client-id "
                "(SERVICECAST_INGEST_CLIENT_ID) and share the work with SERVICECAST_INGEST_SHARED_GROUP"
            )
            self.failed.set()
            client.disconnect()  # no more reconnecting: two clients with one id only take turns

    def _looks_taken_over(self, flags, reason_code) -> bool:
        """A close without a reason soon after connecting while the broker still listens (no restart)."""
        if flags.is_disconnect_packet_from_server or reason_code != "Unspecified error":
            return False  # the broker said why (shutting down, busy, …), or our keepalive ran out
        if time.monotonic() - self._connected_at >= SHORT_SESSION_S:
            return False
        try:
            socket.create_connection((self.endpoint.host, self.endpoint.port), PROBE_TIMEOUT_S).close()
        except OSError:
            return False  # restarting or out of reach: a takeover leaves the broker up
        return True

    def _on_connect_fail(self, _client, _userdata) -> None:
        # paho calls this inside its `except OSError`: the error says why (refused, no such host, TLS).
        error = sys.exc_info()[1]
        self.short_sessions = 0  # the broker was gone: what closed the last connection was no takeover
        why = f": {error}" if error else ""
        if isinstance(error, ssl.SSLCertVerificationError):
            why += " (a broker certificate from a private CA: set SSL_CERT_FILE to the CA's PEM file)"
        log.warning(
            "cannot reach the broker at %s:%s%s; retrying", self.endpoint.host, self.endpoint.port, why
        )

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        if not self._receiving:
            return
        try:
            topic = message.topic
        except UnicodeDecodeError:
            # A topic that is not UTF-8 still has to reach quarantine, byte for byte in its payload.
            topic = message._topic.decode("utf-8", "replace")
        envelope = Envelope(topic, message.payload, message.qos, message.mid, time.time(), self.generation)
        # Blocking here pushes back on the broker through TCP; dropping would lose an unacked message.
        if self.inbox.put(envelope) and not self._full_logged:
            log.warning("ingest queue full; slowed the network loop until the writer caught up")
            self._full_logged = True
