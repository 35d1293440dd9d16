"""Subscribing to the map's nodes and alarms, and keeping the subscription whole through reconnections."""

from __future__ import annotations

import asyncio
import logging
import math

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import Subscription
from asyncua.observer import Observer

from ingest.opcua import restore
from ingest.opcua.buffer import Buffer
from ingest.opcua.connection import RETRY_MAX_S, ServerAccess, count_refusal, keep_watching, lost
from ingest.opcua.mapping import Mapping
from ingest.opcua.metrics import log
from ingest.opcua.publisher import Publisher
from ingest.opcua.translator import Translator, text_of

KEEPALIVE_COUNT = 10  # publishing intervals without a change after which the server sends a keep-alive


class NodesMissing(RuntimeError):
    """Nodes named by the map that the server does not have."""


class SubscriptionRefused(RuntimeError):
    """The server refused the subscription or its items (full: BadTooManySubscriptions, …); retried."""


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


def _stale_after(client: Client, mapping: Mapping, patience_s: float) -> None:
    """Let asyncua's stale-subscription watchdog re-create the subscription only once the server has sent
    nothing, not even a keep-alive, for a keep-alive period and `patience_s` more (math.inf: never)."""
    # Its own bound, 1.5 keep-alive periods (7.5 s with a 0.5 s publishing interval), is shorter than a busy
    # server may take to answer a request: it deleted and re-created the subscription under a bridge still
    # subscribing (a connection lost meanwhile failed the re-creation with a traceback) and under one
    # bridging (whose publish loop then ended: nothing more was sent).
    keepalive_s = mapping.publishing_interval_ms / 1000 * KEEPALIVE_COUNT
    client._stale_check_margin = 1 + patience_s / keepalive_s  # asyncua has no public setting for it


async def subscribe(
    client: Client,
    mapping: Mapping,
    buffer: Buffer,
    publisher: Publisher,
    timeout_s: float = ServerAccess.timeout_s,
) -> tuple[dict[str, str], Subscription]:
    """Check the map, subscribe to values and alarms, buffer the identification; the node ids resolved and
    the subscription.

    The identification is buffered last: an attempt that loses the server half-way leaves none behind, so
    the next one's is the only one. Until the subscription is whole, asyncua's stale-subscription watchdog
    keeps off it: a server that stops answering fails a request here instead (`timeout_s`, the client's),
    and the caller starts over.
    """
    _stale_after(client, mapping, math.inf)
    resolved = await resolve(client, mapping)
    nodes = {resolved[v.node]: v for v in mapping.variables}
    translator = Translator(mapping=mapping, buffer=buffer, publisher=publisher, nodes=nodes)
    values = {}
    for name, node in mapping.identification.items():
        values[name] = text_of(await client.get_node(resolved[node]).read_value())
    params = ua.CreateSubscriptionParameters(
        RequestedPublishingInterval=mapping.publishing_interval_ms,
        RequestedLifetimeCount=10_000,
        RequestedMaxKeepAliveCount=KEEPALIVE_COUNT,
        MaxNotificationsPerPublish=0,
        PublishingEnabled=True,
        Priority=0,
    )
    item = ""  # the node whose monitored item is being created, named in a refusal
    try:
        subscription = await client.create_subscription(params, translator)
        restore.track(subscription)
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
        raise SubscriptionRefused(count_refusal(exc.code) + item) from exc
    if values:
        translator.identification(values)
    _stale_after(client, mapping, timeout_s)
    return resolved, subscription


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
            self.refused.set_result(count_refusal(error.code))

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
                f"{count_refusal(result.StatusCode.value)} for {self.names.get(node, node)}",
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


async def until_resubscribe(
    client: Client, mapping: Mapping, resolved: dict[str, str], subscription: Subscription, endpoint: str
) -> None:
    """Return once the bridge must subscribe anew because after a reconnection the server numbers the map's
    nodes anew; SubscriptionRefused if it refused asyncua's re-creation of the subscription, NodesMissing if
    the nodes are gone. An item it refused is asked for again meanwhile, alone."""
    recreation = _Recreation(client, resolved)
    unguard = restore.guard(client, subscription)
    renumbered = asyncio.ensure_future(_until_renumbered(client, mapping, resolved))
    asking = asyncio.ensure_future(_ask_again(subscription, recreation, endpoint))
    watching = asyncio.ensure_future(keep_watching(client))
    helpers = {asking, watching}  # they run until cancelled: one that ends has failed, and ends the bridge
    try:
        await asyncio.wait({renumbered, recreation.refused, *helpers}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (renumbered, *helpers):
            task.cancel()
        await asyncio.wait({renumbered, *helpers})
        recreation.close()
        unguard()
    for task in helpers:
        if not task.cancelled():  # ended by itself
            raise task.exception() or RuntimeError(f"{task.get_coro().__name__} of the bridge ended")
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
