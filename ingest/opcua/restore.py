"""Keeping asyncua's restore of the subscription after a reconnection from losing what it restores."""

from __future__ import annotations

import time
from collections.abc import Callable

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import Subscription


def guard(client: Client, subscription: Subscription) -> Callable[[], None]:
    """Guard asyncua's restores of `subscription` (see below) until the call returned is made."""
    forget = _fresh_on_reconnection(client, subscription)
    session = subscription.server
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
        del session.republish

    return stop


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
