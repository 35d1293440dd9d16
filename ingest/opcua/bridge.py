"""The OPC UA edge bridge: subscribe to a machine's mapped nodes, buffer JSON contract messages, publish."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import Subscription
from asyncua.observer import Observer

from fleet import contract
from ingest.contract import CODE_PATTERN, parse_message
from ingest.opcua import metrics
from ingest.opcua.buffer import Buffer, Seen
from ingest.opcua.mapping import Mapping, Variable
from ingest.opcua.publisher import Publisher
from ingest.schemas import Rejection

log = logging.getLogger(__name__)
# OPC UA Part 5's severity bands (1-1000) onto servicecast's four levels.
SEVERITY_BANDS = ((801, "critical"), (601, "error"), (401, "warning"), (0, "info"))
IDENTIFICATION_CODE = "opcua.identification"
GOODBYE_S = 2.0  # on stop, how long the OPC UA server may take to close the session
FLUSH_S = 3.0  # on stop, how long the publisher keeps sending what the buffer holds
ZERO_TIME = datetime(1601, 1, 1, tzinfo=UTC)  # a DateTime of 0: OPC UA's "no time"
STATUS_CODE_BITS = 0xFFFF0000  # a StatusCode's code; the low 16 bits are info bits (limits, overflow)
SHOWN_CHARS = 200  # of a value's repr, kept per node to tell a new change from a repeated one
RETRY_MAX_S = 30.0  # the longest wait between two attempts to connect and subscribe
# Answers that say the connection or the session went, or the server cannot take us now: retried as a lost
# connection is, never reported as a node missing from the map or a refused login.
LOST = frozenset(
    getattr(ua.StatusCodes, name)
    for name in (
        "BadTimeout BadRequestTimeout BadCommunicationError BadConnectionClosed BadDisconnect "
        "BadNotConnected BadServerNotConnected BadServerHalted BadShutdown BadResourceUnavailable "
        "BadTooManySessions BadSessionClosed BadSessionIdInvalid BadSessionNotActivated "
        "BadSecureChannelClosed BadSecureChannelIdInvalid BadTcpInternalError"
    ).split()
)


class _ServerAwayNoise(logging.Filter):
    """asyncua's publish loop logs a traceback every second while the server is away (a machine switched off
    for the night: ~40,000); its reconnect says so once per attempt, with backoff. A server's answer to a
    publish (one back from a restart that forgot the session answers BadUserAccessDenied until asyncua
    re-creates it) is told in one line naming the status, not a traceback: it stays visible if it lasts."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Publish iteration crashed") or record.exc_info is None:
            return True
        error = record.exc_info[1]
        if isinstance(error, ua.UaStatusCodeError):
            record.msg, record.args, record.exc_info = (
                "the OPC UA server refused a publish request (%s); asyncua retries in 1 s",
                (ua.StatusCode(error.code).name,),
                None,
            )
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        return not isinstance(error, OSError)


_SERVER_AWAY_NOISE = _ServerAwayNoise()


class NodesMissing(RuntimeError):
    """Nodes named by the map that the server does not have."""


class SubscriptionRefused(RuntimeError):
    """The server refused the subscription or its items (full: BadTooManySubscriptions, …); retried."""


def _refused(code: int) -> str:
    """The status name of a refusal, counted."""
    name = ua.StatusCode(code).name
    metrics.REFUSALS.labels(status=name).inc()
    return name


class _Recreation(Observer):
    """Watches asyncua's re-creation of the subscription after a reconnection. A refused subscription ends the
    wait (`refused`); a refused item, which asyncua logs and drops for good (from its later re-creations too),
    is kept in `missing` to be asked for again: else the bridge would send nothing of that node, silently."""

    SUBSCRIBING = frozenset({"CreateSubscriptionRequest", "CreateMonitoredItemsRequest"})

    def __init__(self, client: Client, resolved: dict[str, str]) -> None:
        self.refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        # client handle -> the refused item's request and why, e.g. "BadServiceUnsupported for nsu=…;s=Press7"
        self.missing: dict[int, tuple[ua.MonitoredItemCreateRequest, str]] = {}
        self.item_refused = asyncio.Event()
        self.names = {number: name for name, number in resolved.items()}  # ns=… -> the map's node id
        self.session = client.uaclient.session
        create = self.session.create_monitored_items

        async def checked(params: ua.CreateMonitoredItemsParameters) -> list[ua.MonitoredItemCreateResult]:
            results = await create(params)
            self._check_items(params, results)
            return results

        client.uaclient.observer = self
        self.session.create_monitored_items = checked  # the answer holds each item's status, a request's not

    def close(self) -> None:
        """Stop watching the session's item creations."""
        del self.session.create_monitored_items

    def on_request(self, request_type: str, duration: float, error: BaseException | None) -> None:
        """A refusal (not a lost connection: asyncua's next reconnection re-creates) ends the wait."""
        if request_type not in self.SUBSCRIBING or self.refused.done():
            return
        if isinstance(error, ua.UaStatusCodeError) and not lost(error):
            self.refused.set_result(_refused(error.code))

    def _check_items(
        self, params: ua.CreateMonitoredItemsParameters, results: list[ua.MonitoredItemCreateResult]
    ) -> None:
        """Keep each item refused, whatever its status (asyncua will not ask again); forget one taken."""
        for item, result in zip(params.ItemsToCreate, results, strict=False):
            handle = item.RequestedParameters.ClientHandle
            if result.StatusCode.is_good():
                self.missing.pop(handle, None)
                continue
            node = item.ItemToMonitor.NodeId.to_string()
            self.missing[handle] = (
                item,
                f"{_refused(result.StatusCode.value)} for {self.names.get(node, node)}",
            )
            self.item_refused.set()


async def _ask_again(subscription: Subscription, recreation: _Recreation, endpoint: str) -> None:
    """Ask, with backoff, for the items the server refused to re-create, alone and on the same subscription,
    so that the other items' changes go on without a gap; until cancelled."""
    while True:
        await recreation.item_refused.wait()
        delay, said = 1.0, None  # the refusal last logged: the same one again is logged at DEBUG
        while recreation.missing:
            why = "; ".join(reason for _, reason in recreation.missing.values())
            log.log(
                logging.DEBUG if why == said else logging.WARNING,
                "the OPC UA server at %s refused to subscribe again after a reconnection (%s); asking for "
                "that item again in %.0f s (logged once while it refuses so, counted each time)",
                endpoint,
                why,
                delay,
            )
            said = why
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            if subscription.subscription_id is None:  # asyncua is re-creating it: it answers for itself
                continue
            try:
                await subscription.create_monitored_items([item for item, _ in recreation.missing.values()])
            except (OSError, TimeoutError, ua.UaStatusCodeError) as exc:  # lost, or re-created meanwhile
                log.debug("asking the OPC UA server at %s for the refused items failed: %s", endpoint, exc)
        recreation.item_refused.clear()
        log.info("the OPC UA server at %s took every item again", endpoint)


def lost(exc: BaseException) -> bool:
    """Whether this error means the server went away (or cannot serve us now), so trying again may work."""
    if isinstance(exc, ua.UaStatusCodeError):
        return exc.code in LOST
    if isinstance(exc, OSError) and exc.filename is not None:
        return False  # a file the bridge cannot read (a certificate or key of --security)
    return isinstance(exc, OSError | TimeoutError)


def _warn_lost(exc: Exception, what: str, then: str, delay: float) -> None:
    """One warning line for a server that went away (see `lost`); any other error is raised again."""
    if not lost(exc):
        raise exc
    log.warning("%s (%s); %s in %.0f s", what, exc or type(exc).__name__, then, delay)


@dataclass(frozen=True)
class ServerAccess:
    """How to reach and authenticate to the machine's OPC UA server."""

    endpoint: str
    username: str | None = None
    password: str | None = None
    security: str | None = None  # asyncua's "Policy,Mode,cert,key[,server_cert]"
    application_uri: str = "urn:servicecast:opcua-bridge"
    timeout_s: float = 10.0


def severity(value: object) -> str:
    """The servicecast severity of an OPC UA event severity (1-1000)."""
    number = value if isinstance(value, int) else 0
    return next(level for floor, level in SEVERITY_BANDS if number >= floor)


def _ts(*candidates: object) -> datetime:
    """The first of these that is a time (OPC UA's zero time, 1601, says there is none), else now."""
    for value in candidates:
        if isinstance(value, datetime):
            value = value if value.tzinfo else value.replace(tzinfo=UTC)
            if value > ZERO_TIME:
                return value
    return datetime.now(UTC)


class Translator:
    """Turns OPC UA notifications into JSON contract messages in the buffer (asyncua calls it on its loop)."""

    def __init__(self, *, mapping: Mapping, buffer: Buffer, publisher: Publisher, nodes: dict[str, Variable]):
        self.mapping = mapping
        self.buffer = buffer
        self.publisher = publisher
        self.by_node = nodes  # resolved node id string -> its map entry
        # While the server's clock is behind the latest source time sent (stepped back), that time.
        self._behind: datetime | None = None
        self.telemetry_topic = contract.telemetry_topic(mapping.tenant, mapping.machine)
        self.events_topic = contract.events_topic(mapping.tenant, mapping.machine)
        # (source time, n) -> readings, nodes' (time, value); n > 0 holds a node's further values at that time
        self._pending: dict[tuple[datetime, int], tuple[dict[str, float | None], dict[str, Seen]]] = {}
        self._arrived: dict[str, Seen] = {}  # node -> (source time, value) of its last value in this publish
        self._flush_scheduled = False
        self._logged: set[tuple[str, str]] = set()  # (node or topic, why) already logged

    def datachange_notification(self, node, val, data) -> None:  # noqa: ANN001
        """One changed value, joined with the others of its source time in this publish, then buffered."""
        metrics.CHANGES.labels(kind="data").inc()
        key = node.nodeid.to_string()
        variable = self.by_node[key]
        value = data.monitored_item.Value
        ts = _ts(value.SourceTimestamp, value.ServerTimestamp)
        this = (ts.isoformat(), repr(val)[:SHOWN_CHARS])
        last = self.buffer.seen.get(key)
        if last is not None and last[0] == this[0] and last[1] in (None, this[1]):
            # The initial value of a new subscription (after a restart or reconnect) that was sent already:
            # its time and value (a change may keep the time: a clock in whole seconds, or standing still).
            metrics.SKIPPED.labels(reason="already_sent").inc()
            return
        if not self._good(variable, value.StatusCode):
            return
        self._check_clock(variable, ts, (self._arrived.get(key) or last or (None,))[0])
        n = 0
        while variable.sensor in self._pending.get((ts, n), ({},))[0]:
            n += 1  # a message holds one value per sensor: a second change at one time goes in the next
        readings, seen = self._pending.setdefault((ts, n), ({}, {}))
        readings[variable.sensor] = self._number(variable, val)
        seen[key] = self._arrived[key] = this
        if not self._flush_scheduled:
            # asyncua hands over every item of one publish response before the loop runs anything else.
            asyncio.get_running_loop().call_soon(self.flush)
            self._flush_scheduled = True

    def _check_clock(self, variable: Variable, ts: datetime, last: str | None) -> None:
        """Count a value older than its node's last one (the server's clock stepped back: an NTP correction, a
        PLC's clock reset); log the first of an episode, which lasts until the source times pass the latest
        sent before it. The value is sent with its own time: `seq`, not `ts`, is the idempotency key."""
        if self._behind is not None and ts > self._behind:
            log.info("the OPC UA server's source times are past %s again", self._behind.isoformat())
            self._behind = None
        if last is None or ts >= (previous := datetime.fromisoformat(last)):
            return
        metrics.STEPPED_BACK.inc()
        if self._behind is None:
            self._behind = max(self.buffer.newest_seen, previous)
            log.warning(
                "the OPC UA server's clock stepped back: %s (%s) sent a value at %s after one at %s; values "
                "are sent with their own source times (logged once until they pass %s, counted each time)",
                variable.node,
                variable.sensor,
                ts.isoformat(),
                previous.isoformat(),
                self._behind.isoformat(),
            )

    def _good(self, variable: Variable, status: ua.StatusCode | None) -> bool:
        """True for a Good value; a Bad or Uncertain one is counted, logged once per node and status, dropped.

        The contract has no quality field, so a value the server doubts would be stored as a measurement.
        """
        if status is None or status.is_good():
            return True
        name = ua.StatusCode(status.value & STATUS_CODE_BITS).name
        metrics.NOT_GOOD.labels(status=name).inc()
        self._warn_once(
            (variable.node, name),
            "%s (%s) sent a value with status %s; values whose status is not Good are not sent",
            variable.node,
            variable.sensor,
            name,
        )
        return False

    def _warn_once(
        self, key: tuple[str, str], message: str, *args: object, level: int = logging.WARNING
    ) -> None:
        """Log the first of a kind only: a node stuck on a bad value, or a clock far off, repeats at every
        change (at one a second, ~86,000 lines a day); the metrics count each one."""
        if key not in self._logged:
            self._logged.add(key)
            log.log(level, message, *args)

    def _number(self, variable: Variable, val: object) -> float | None:
        if isinstance(val, ua.LocalizedText):
            val = val.Text
        if isinstance(val, str) and val in variable.values:
            return variable.values[val]
        if isinstance(val, bool):
            return float(val)
        if isinstance(val, int | float) and val - val == 0:
            return val
        metrics.SKIPPED.labels(reason="not_a_number").inc()
        self._warn_once(
            (variable.node, "not_a_number"),
            "%s (%s) sent %r, not a number the map knows; stored as null (logged once, counted each time)",
            variable.node,
            variable.sensor,
            val,
        )
        return None

    def flush(self) -> None:
        """Buffer the readings collected in this publish, one message per source time."""
        self._flush_scheduled = False
        (pending, self._pending), (last, self._arrived) = (self._pending, {}), (self._arrived, {})
        for (ts, _), (readings, seen) in sorted(pending.items()):
            # A node keeps the time of its last value in arrival order, which a clock stepping back inside
            # one publish puts before its earlier ones: it is what the server's initial value will repeat.
            seen = {node: this for node, this in seen.items() if last[node] == this}
            self._add(
                self.telemetry_topic, lambda seq, ts=ts, r=readings: contract.encode_payload(seq, ts, r), seen
            )

    def event_notification(self, event) -> None:  # noqa: ANN001
        """An alarm or condition event becomes one servicecast event."""
        metrics.CHANGES.labels(kind="event").inc()
        fields = event.get_event_props_as_fields_dict()
        condition = _text(fields.get("ConditionName")) or _text(fields.get("SourceName")) or "alarm"
        code = self._code(condition)
        extra: dict[str, object] = {"source": _text(fields.get("SourceName")) or None, "condition": condition}
        active = fields.get("ActiveState/Id")
        if active is not None:
            extra["active"] = bool(getattr(active, "Value", active))
        event_id = fields.get("EventId")
        if event_id is not None and isinstance(getattr(event_id, "Value", None), bytes):
            extra["event_id"] = event_id.Value.hex()
        ts = _ts(getattr(fields.get("Time"), "Value", None))
        level = severity(getattr(fields.get("Severity"), "Value", None))
        text = _text(fields.get("Message"))[:1024] or None

        def build(seq: int) -> bytes:
            return contract.encode_event(seq, ts, code, severity=level, text=text, **extra)

        self._add(self.events_topic, build)

    def _code(self, condition: str) -> str:
        for alarm in self.mapping.alarms:
            if condition in alarm.codes:
                return alarm.codes[condition]
        cleaned = re.sub(r"[^A-Za-z0-9._:-]", "_", condition)[:64]
        return cleaned if CODE_PATTERN.match(cleaned) else "alarm"

    def identification(self, values: dict[str, object]) -> None:
        """The machine's identification as read at start, as one info event."""
        text = ", ".join(f"{k}: {v}" for k, v in values.items())[:1024] or None
        now = datetime.now(UTC)
        ident = {k: str(v) for k, v in values.items()}

        def build(seq: int) -> bytes:
            return contract.encode_event(
                seq, now, IDENTIFICATION_CODE, severity="info", text=text, identification=ident
            )

        self._add(self.events_topic, build)

    def status_change_notification(self, status) -> None:  # noqa: ANN001
        """The server ended or changed the subscription."""
        log.warning("OPC UA subscription status changed: %s", status)

    def _add(self, topic: str, build, seen: dict[str, Seen] | None = None) -> None:  # noqa: ANN001
        def checked(seq: int) -> bytes:
            payload = build(seq)
            # The ingester's own check: a message it would quarantine is refused here, where it is logged.
            parsed = parse_message(topic, payload)
            if type(parsed) is Rejection:
                raise ValueError(f"{parsed.reason}: {parsed.detail}")
            return payload

        try:
            if self.buffer.add(topic, checked, seen) is not None:
                self.publisher.wake()
        except ValueError as exc:
            metrics.SKIPPED.labels(reason="invalid").inc()
            why = str(exc).partition(":")[0]  # the contract's reason code, e.g. bad_timestamp
            self._warn_once(
                (topic, why),
                "a message for %s would be quarantined, not sent: %s (logged once per reason, counted each)",
                topic,
                exc,
                level=logging.ERROR,
            )


def _text(value: object) -> str:
    value = getattr(value, "Value", value)
    if isinstance(value, ua.LocalizedText):
        return value.Text or ""
    return "" if value is None else str(value)


async def resolve(client: Client, mapping: Mapping) -> dict[str, str]:
    """Map each node id of the map to the server's `ns=…` form; NodesMissing names every one it lacks."""
    namespaces = await client.get_namespace_array()
    resolved, missing = {}, []
    for raw in mapping.nodes():
        text = raw
        if raw.startswith("nsu="):
            uri, _, rest = raw[4:].partition(";")
            if uri not in namespaces:
                missing.append(f"{raw} (namespace {uri} is not on the server)")
                continue
            text = f"ns={namespaces.index(uri)};{rest}"
        try:
            await client.get_node(text).read_node_class()
        except ua.UaStatusCodeError as exc:
            if lost(exc):
                raise
            missing.append(f"{raw} ({type(exc).__name__})")
            continue
        resolved[raw] = ua.NodeId.from_string(text).to_string()
    if missing:
        raise NodesMissing("the server has no node " + "; no node ".join(missing))
    return resolved


async def connect(access: ServerAccess) -> Client:
    """A connected asyncua client that reconnects and re-creates its subscriptions by itself.

    An unreachable server (the machine is off) is retried with backoff; a refusal (credentials,
    security) raises, since retrying cannot fix it.
    """
    delay = 1.0
    while True:
        # asyncua probes the server every `watchdog_intervall` s and drops the connection when an answer takes
        # longer than that: its 1 s default dropped a server that was only busy (a loaded machine), in the
        # middle of subscribing. The probe gets the time any request gets.
        wait = access.timeout_s
        client = Client(access.endpoint, timeout=wait, watchdog_intervall=wait, auto_reconnect=True)
        client.application_uri = access.application_uri
        if access.username:
            client.set_user(access.username)
            client.set_password(access.password or "")
        try:
            if access.security:
                await client.set_security_string(access.security)
            await client.connect()
            return client
        except (OSError, TimeoutError, ua.UaStatusCodeError) as exc:
            _warn_lost(exc, f"cannot reach the OPC UA server at {access.endpoint}", "retrying", delay)
            if isinstance(exc, ua.UaStatusCodeError):  # BadTooManySessions, BadServerHalted, …
                _refused(exc.code)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_S)


async def _subscribe(
    client: Client, mapping: Mapping, buffer: Buffer, publisher: Publisher
) -> tuple[dict[str, str], Subscription]:
    """Check the map, subscribe to values and alarms, buffer the identification; the node ids resolved and
    the subscription.

    The identification is buffered last: an attempt that loses the server half-way leaves none behind, so
    the next one's is the only one.
    """
    resolved = await resolve(client, mapping)
    nodes = {resolved[v.node]: v for v in mapping.variables}
    translator = Translator(mapping=mapping, buffer=buffer, publisher=publisher, nodes=nodes)
    values = {}
    for name, node in mapping.identification.items():
        values[name] = _text(await client.get_node(resolved[node]).read_value())
    params = ua.CreateSubscriptionParameters(
        RequestedPublishingInterval=mapping.publishing_interval_ms,
        RequestedLifetimeCount=10_000,
        RequestedMaxKeepAliveCount=10,
        MaxNotificationsPerPublish=0,
        PublishingEnabled=True,
        Priority=0,
    )
    item = ""  # the node whose monitored item is being created, named in a refusal
    try:
        subscription = await client.create_subscription(params, translator)
        for variable in mapping.variables:
            item = f" for {variable.node}"
            await subscription.subscribe_data_change(
                client.get_node(resolved[variable.node]),
                sampling_interval=variable.sampling_interval_ms,
                queuesize=100,
            )
        for alarm in mapping.alarms:
            item = f" for {alarm.source}"
            await subscription.subscribe_alarms_and_conditions(
                client.get_node(resolved[alarm.source]), ua.ObjectIds.AlarmConditionType
            )
    except ua.UaStatusCodeError as exc:
        if lost(exc):
            raise
        raise SubscriptionRefused(_refused(exc.code) + item) from exc
    if values:
        translator.identification(values)
    return resolved, subscription


async def _until_resubscribe(
    client: Client, mapping: Mapping, resolved: dict[str, str], subscription: Subscription, endpoint: str
) -> None:
    """Return once the bridge must subscribe anew because after a reconnection the server numbers the map's
    nodes anew; SubscriptionRefused if it refused asyncua's re-creation of the subscription, NodesMissing if
    the nodes are gone. An item it refused is asked for again meanwhile, alone."""
    recreation = _Recreation(client, resolved)
    renumbered = asyncio.ensure_future(_until_renumbered(client, mapping, resolved))
    asking = asyncio.ensure_future(_ask_again(subscription, recreation, endpoint))
    try:
        await asyncio.wait({renumbered, recreation.refused}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        renumbered.cancel()
        asking.cancel()
        await asyncio.wait({renumbered, asking})
        recreation.close()
    if recreation.refused.done():
        raise SubscriptionRefused(recreation.refused.result())
    renumbered.result()  # NodesMissing: the restarted server lacks some


async def _until_renumbered(client: Client, mapping: Mapping, resolved: dict[str, str]) -> None:
    """Return once a reconnection finds the map's nodes under other ids; NodesMissing if they are gone.

    asyncua re-creates a subscription with the `ns=` indexes of the first session: after a server restart
    that numbered its namespaces anew, every item would be refused and the bridge would send nothing.
    """
    async with client.uaclient.subscribe_state() as states:
        while True:
            await states.wait_for_state(UaClientState.RECONNECTING)
            await states.wait_for_state(UaClientState.CONNECTED)
            try:
                now = await resolve(client, mapping)
            except (OSError, TimeoutError, ua.UaError) as exc:  # lost again: the next reconnection checks
                log.warning("cannot check the OPC UA server's nodes after a reconnection: %s", exc)
                continue
            if now != resolved:
                return


async def _goodbye(client: Client, endpoint: str) -> None:
    """Close the session; a server that is gone or does not answer within GOODBYE_S is left behind.

    asyncua waits its whole request timeout (ServerAccess.timeout_s) for the answer to CloseSession;
    the bridge's stop must not.
    """
    closing = asyncio.ensure_future(client.disconnect())
    await asyncio.wait({closing}, timeout=GOODBYE_S)
    if not closing.done():
        log.warning(
            "the OPC UA server at %s did not answer the goodbye in %.0f s; dropped", endpoint, GOODBYE_S
        )
        client.disconnect_socket()  # fails the requests still waiting for an answer
        closing.cancel()
        await asyncio.wait({closing}, timeout=GOODBYE_S)
    elif not closing.cancelled() and closing.exception() is not None:
        log.debug("disconnect from the OPC UA server failed", exc_info=closing.exception())


async def _unless_sender_ended(connecting: Awaitable[Client], sender: asyncio.Task) -> Client:
    """The connected client, unless the sender ended first (the broker refused us): then its error. An
    unreachable OPC UA server is retried forever, and a refusal that nobody reads would leave the bridge
    retrying it without ever sending anything."""
    task = asyncio.ensure_future(connecting)
    try:
        await asyncio.wait({task, sender}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if task.cancelled() and sender.done():
        sender.result()  # raises what ended the sender
    return task.result()


async def run(*, access: ServerAccess, mapping: Mapping, buffer: Buffer, publisher: Publisher) -> None:
    """Connect, check the map, subscribe, and bridge until cancelled (or the broker refuses us).

    Cancelling is a graceful stop bounded in time: the goodbye to the OPC UA server takes at most
    about 2 x GOODBYE_S, then the publisher sends what the buffer holds for at most FLUSH_S; what the
    broker has not acknowledged by then stays in the buffer for the next start.
    """
    logging.getLogger("asyncua.client.ua_session.UaSession").addFilter(_SERVER_AWAY_NOISE)  # added once
    sender = asyncio.create_task(publisher.run(), name="publisher")
    client = resubscribe = None
    delay = 1.0
    said = None  # the refusal last logged: the same one again is logged at DEBUG until bridging resumes
    try:
        while not sender.done():
            client = await _unless_sender_ended(connect(access), sender)
            try:
                resolved, subscription = await _subscribe(client, mapping, buffer, publisher)
            except (SubscriptionRefused, OSError, TimeoutError, ua.UaStatusCodeError) as exc:
                if isinstance(exc, SubscriptionRefused):  # a full or busy server: another client may leave
                    log.log(
                        logging.DEBUG if str(exc) == said else logging.WARNING,
                        "the OPC UA server at %s refused the subscription (%s); subscribing again in %.0f s "
                        "(logged once while it refuses so, counted each time)",
                        access.endpoint,
                        exc,
                        delay,
                    )
                    said = str(exc)
                else:
                    lost_at = f"lost the OPC UA server at {access.endpoint} while subscribing"
                    _warn_lost(exc, lost_at, "connecting again", delay)
                # As a loss once bridging: this client (and what it subscribed) goes, a new one starts over.
                await _goodbye(client, access.endpoint)
                client = None
                await asyncio.wait({sender}, timeout=delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay, said = 1.0, None
            log.info(
                "bridging %d variable(s) and %d alarm source(s) of %s to %s/%s",
                len(mapping.variables),
                len(mapping.alarms),
                access.endpoint,
                mapping.tenant,
                mapping.machine,
            )
            resubscribe = asyncio.create_task(
                _until_resubscribe(client, mapping, resolved, subscription, access.endpoint)
            )
            # asyncio.wait, not a gather: a stop must not cancel the sender, it flushes below.
            await asyncio.wait({resubscribe, sender}, return_when=asyncio.FIRST_COMPLETED)
            if resubscribe.done():
                try:
                    resubscribe.result()  # NodesMissing (the restarted server lacks some) ends the bridge
                    why = "numbers its nodes anew"
                except SubscriptionRefused as exc:
                    why, said = f"refused to subscribe again after a reconnection ({exc})", str(exc)
                log.warning("the OPC UA server at %s %s; subscribing again", access.endpoint, why)
                await _goodbye(client, access.endpoint)
                client = None
        sender.result()  # raises what ended the sender
    finally:
        if resubscribe is not None:
            resubscribe.cancel()
            await asyncio.wait({resubscribe})
        if client is not None:
            await _goodbye(client, access.endpoint)
        publisher.stop(within=FLUSH_S)
        await sender
