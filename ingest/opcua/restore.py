"""Keeping asyncua's restore of the subscription after a reconnection from losing what it restores."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import Subscription

from ingest.opcua.connection import lost
from ingest.opcua.metrics import log


def guard(client: Client, subscription: Subscription) -> Callable[[], None]:
    """Guard asyncua's restores of `subscription` (see below) until the call returned is made."""
    forget = _fresh_on_reconnection(client, subscription)
    session = subscription.server
    subscription.restore = _kept_whole(client, subscription, subscription.restore)
    republish = session.republish

    async def republish_or_end(subscription_id: int, sequence_number: int) -> ua.NotificationMessage:
        message = await republish(subscription_id, sequence_number)
        if message.SequenceNumber != sequence_number:
            raise ua.UaStatusCodeError(ua.StatusCodes.BadMessageNotAvailable)
        return message

    # asyncua's restore asks again for every message after the last it had, until the server says one is not
    # available (BadMessageNotAvailable); asyncua's server answers an empty message instead: the restore
    # asked without end, as fast as the server answered, and its reconnection never went back to watching
    # the connection, so a later loss went unnoticed.
    session.republish = republish_or_end

    def stop() -> None:
        forget()
        del session.republish, subscription.restore

    return stop


def _kept_whole(
    client: Client, subscription: Subscription, restore: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """`restore`, put back as it was when a lost connection fails it, and told in one warning line.

    asyncua's restore falls back to re-creating the subscription (when the transfer fails), which forgets its
    number and its items before asking the server: a connection lost then failed it with a traceback, and
    the next reconnection's restore made a subscription of nothing, so nothing more was sent. Put back, the
    next restore transfers the server's subscription, with the changes kept for it, or re-creates it whole.
    A request that timed out leaves the client connected: it is made to reconnect, as asyncua's watchdog
    does when its re-creation fails, so that a restore comes again.
    """

    async def restore_or_keep() -> None:
        number, items = subscription.subscription_id, dict(subscription._monitored_items)
        try:
            await restore()
        except Exception as exc:
            if not lost(exc):
                raise
            subscription.subscription_id, subscription._monitored_items = number, items
            if number is not None:  # the re-creation forgot whom the server's publishes of it are for
                subscription.server._subscription_callbacks[number] = subscription.publish_callback
            if client.uaclient.state is UaClientState.CONNECTED:
                client.uaclient.notify_transport_lost()
            log.warning(
                "lost the OPC UA server restoring the subscription after a reconnection (%s: %s); asyncua "
                "reconnects and restores it again",
                type(exc).__name__,
                exc,
            )

    return restore_or_keep


def _fresh_on_reconnection(client: Client, subscription: Subscription) -> Callable[[], None]:
    """Count the subscription as just heard from whenever a reconnection is made; the call that stops it.

    asyncua's stale-subscription watchdog skips a client that is not CONNECTED, but the client is CONNECTED
    again before asyncua's restore has transferred the subscription and asked for what it missed: a
    subscription silent through an outage was found stale in that window and deleted on the server, with
    the changes the server kept for it. The restore now has the watchdog's whole bound to finish in.
    """

    def heard(state: UaClientState) -> None:
        if state is UaClientState.CONNECTED and subscription.last_publish_at is not None:
            subscription.last_publish_at = time.monotonic()

    # A raw listener, called as the state changes: a queued one may run after the watchdog's next tick.
    return client.uaclient._add_state_listener(heard)
