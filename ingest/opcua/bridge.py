"""The OPC UA edge bridge's run loop: connect, subscribe, bridge, and start over when it must."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from asyncua import Client, ua

from ingest.opcua.asyncua_log import NOISY_LOGGERS, SERVER_AWAY_NOISE
from ingest.opcua.buffer import Buffer
from ingest.opcua.connection import RETRY_MAX_S, ServerAccess, connect, goodbye, warn_lost
from ingest.opcua.mapping import Mapping
from ingest.opcua.metrics import log
from ingest.opcua.publisher import Publisher
from ingest.opcua.subscribing import NodesMissing, SubscriptionRefused, subscribe, until_resubscribe

__all__ = ["NodesMissing", "ServerAccess", "log", "run"]  # what the CLI and the demo use
FLUSH_S = 3.0  # on stop, how long the publisher keeps sending what the buffer holds


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
    for name in NOISY_LOGGERS:
        logging.getLogger(name).addFilter(SERVER_AWAY_NOISE)  # added once
    sender = asyncio.create_task(publisher.run(), name="publisher")
    client = resubscribe = None
    delay = 1.0
    said = None  # the refusal last logged: the same one again is logged at DEBUG until bridging resumes
    try:
        while not sender.done():
            client = await _unless_sender_ended(connect(access), sender)
            try:
                resolved, subscription = await subscribe(client, mapping, buffer, publisher, access.timeout_s)
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
                    warn_lost(exc, lost_at, "connecting again", delay)
                # As a loss once bridging: this client (and what it subscribed) goes, a new one starts over.
                await goodbye(client, access.endpoint)
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
                until_resubscribe(client, mapping, resolved, subscription, access.endpoint)
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
                await goodbye(client, access.endpoint)
                client = None
        sender.result()  # raises what ended the sender
    finally:
        if resubscribe is not None:
            resubscribe.cancel()
            await asyncio.wait({resubscribe})
        if client is not None:
            await goodbye(client, access.endpoint)
        publisher.stop(within=FLUSH_S)
        await sender
