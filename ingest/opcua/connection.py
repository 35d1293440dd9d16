"""Reaching the machine's OPC UA server: how, with backoff while it is away, and leaving it within a bound."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState

from ingest.opcua import metrics
from ingest.opcua.metrics import log

GOODBYE_S = 2.0  # on stop, how long the OPC UA server may take to close the session
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


def count_refusal(code: int) -> str:
    """The status name of a refusal, counted."""
    name = ua.StatusCode(code).name
    metrics.REFUSALS.labels(status=name).inc()
    return name


def lost(exc: BaseException) -> bool:
    """Whether this error means the server went away (or cannot serve us now), so trying again may work."""
    if isinstance(exc, ua.UaStatusCodeError):
        return exc.code in LOST
    if isinstance(exc, OSError) and exc.filename is not None:
        return False  # a file the bridge cannot read (a certificate or key of --security)
    return isinstance(exc, OSError | TimeoutError)


def warn_lost(exc: Exception, what: str, then: str, delay: float) -> None:
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
            warn_lost(exc, f"cannot reach the OPC UA server at {access.endpoint}", "retrying", delay)
            if isinstance(exc, ua.UaStatusCodeError):  # BadTooManySessions, BadServerHalted, …
                count_refusal(exc.code)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_S)


async def keep_watching(client: Client) -> None:
    """Start asyncua's stale-subscription watchdog again each time it ends, once the client is connected;
    until cancelled.

    After a re-creation of a stale subscription that fails it asks for a reconnection and returns for good: a
    subscription that fell silent later was never re-created, and the bridge sat connected sending nothing.
    """
    while True:
        await asyncio.wait({client._stale_watchdog_task})
        async with client.uaclient.subscribe_state() as states:
            await states.wait_for_state(UaClientState.CONNECTED)
        client._stale_watchdog_task = asyncio.create_task(client._stale_watchdog_loop())
        log.info("watching the OPC UA subscription for silence again")


async def goodbye(client: Client, endpoint: str) -> None:
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
