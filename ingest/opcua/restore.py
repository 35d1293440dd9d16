"""Keeping asyncua's restore of the subscription after a reconnection from losing what it restores."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import Subscription

from ingest.opcua.connection import lost
from ingest.opcua.metrics import log

KEPT_NUMBERS = 10_000  # per subscription, for a server that does not list what it keeps for republishing
KEPT_SUBSCRIPTIONS = 2  # a re-created subscription's numbers, and those of the one it may be put back to
NOT_AVAILABLE = ua.StatusCodes.BadMessageNotAvailable


def track(subscription: Subscription) -> None:
    """Note, from now on, which of `subscription`'s messages with data the bridge received (see Received)."""
    received = Received(subscription.publish_callback)
    subscription.publish_callback = received
    if subscription.subscription_id is not None:
        subscription.server._subscription_callbacks[subscription.subscription_id] = received


class Received:
    """A subscription's publish callback that notes the sequence numbers of the messages with data it passes
    on, and drops one it passed on already.

    A keep-alive carries the next sequence number, and asyncua's client counts it as received: after a
    reconnection its restore asked again only for the messages after that number, so a change the server had
    published onto a connection already dead (kept for republishing under that very number) was lost.
    """

    def __init__(self, callback: Callable[[ua.PublishResult], Awaitable[None]]) -> None:
        self.callback = callback
        self.numbers: dict[int, set[int]] = {}  # subscription id -> numbers received, the newest ids last

    def has(self, subscription_id: int, number: int) -> bool:
        """Whether the message `number` of that subscription came with data."""
        return number in self.numbers.get(subscription_id, ())

    async def __call__(self, result: ua.PublishResult) -> None:
        message = result.NotificationMessage
        number, subscription_id = message.SequenceNumber, result.SubscriptionId
        if message.NotificationData and number:  # 0: asyncua's own status messages, never republished
            if self.has(subscription_id, number):
                log.debug("dropped message %s of subscription %s: received already", number, subscription_id)
                return
            self._note(subscription_id, number, result.AvailableSequenceNumbers)
        await self.callback(result)

    def _note(self, subscription_id: int, number: int, available: list[int] | None) -> None:
        numbers = self.numbers.pop(subscription_id, set())
        self.numbers[subscription_id] = numbers
        while len(self.numbers) > KEPT_SUBSCRIPTIONS:  # a re-created subscription numbers from 1 again
            del self.numbers[next(iter(self.numbers))]
        if available:  # the others were acknowledged: the server holds them no more
            numbers.intersection_update(available)
        numbers.add(number)
        if len(numbers) > KEPT_NUMBERS:
            numbers.remove(min(numbers))


def guard(client: Client, subscription: Subscription) -> Callable[[], None]:
    """Guard asyncua's restores and re-creations of `subscription`, tracked since it was made (`track`), until
    the call returned is made."""
    forget = _fresh_on_reconnection(client, subscription)
    subscription.recreate = _put_back_when_lost(subscription, subscription.recreate)
    subscription.restore = _unwatched(subscription, _kept_whole(client, subscription.restore))
    subscription._republish_gaps = _republishing_unreceived(subscription, subscription.publish_callback)

    def stop() -> None:
        forget()
        del subscription.restore, subscription.recreate, subscription.is_stale
        subscription.__dict__.pop("_republish_gaps", None)

    return stop


def _republishing_unreceived(
    subscription: Subscription, received: Received
) -> Callable[[list[int]], Awaitable[bool]]:
    """In place of asyncua's republishing after a transfer: each message the server still holds that the
    bridge did not receive, asked for once, in order; False (asyncua re-creates) if the server fails.

    asyncua's asks from the number after the last it counted as received (a keep-alive's, see Received) until
    the server says one is not available; asyncua's server answers an empty message instead of
    BadMessageNotAvailable, so it asked without end and its reconnection never went back to watching.
    """

    async def republish(available: list[int]) -> bool:
        session, subscription_id = subscription.server, subscription.subscription_id
        subscription._replaying = True
        try:
            for number in sorted(available):
                if received.has(subscription_id, number):
                    continue
                try:
                    message = await session.republish(subscription_id, number)
                except Exception as exc:
                    if lost(exc):
                        raise  # put back whole (below), and the next restore asks for it again
                    if isinstance(exc, ua.UaStatusCodeError) and exc.code == NOT_AVAILABLE:
                        continue
                    log.warning(
                        "the OPC UA server did not republish message %s (%s); re-creating", number, exc
                    )
                    return False
                if message.SequenceNumber == number:  # else asyncua's server no longer had it
                    await received(ua.PublishResult(subscription_id, NotificationMessage=message))
        finally:
            subscription._replaying = False
        return True

    return republish


def _put_back_when_lost(
    subscription: Subscription, recreate: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """`recreate`, leaving the subscription as it was when a lost connection fails it; the numbers received of
    the one it replaces are forgotten.

    asyncua's re-creation (its stale-subscription watchdog's, or its restore's when a transfer fails) forgets
    the subscription's number and items before asking the server: a connection lost then left a subscription
    of nothing, which the next reconnection's restore made anew, so nothing more was sent, while the server's,
    its delete lost with the connection, still held the changes kept for it. Put back, the next restore
    transfers that one, with what it kept, or re-creates it whole.
    """

    async def recreate_or_keep() -> None:
        number, items = subscription.subscription_id, dict(subscription._monitored_items)
        # The old one's received numbers go with it: a restarted server may give the new one its id, and
        # number its messages from 1 again (asyncua's, open62541), which Received would drop as had.
        received = subscription.publish_callback.numbers.pop(number, None)
        try:
            await recreate()
        except Exception as exc:
            if lost(exc):
                subscription.subscription_id, subscription._monitored_items = number, items
                if number is not None:  # the re-creation forgot whom the server's publishes of it are for
                    subscription.server._subscription_callbacks[number] = subscription.publish_callback
                if received is not None:
                    subscription.publish_callback.numbers[number] = received
            raise

    return recreate_or_keep


def _kept_whole(client: Client, restore: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """`restore`, told in one warning line when a lost connection fails it (the subscription is put back
    whole, `_put_back_when_lost`).

    A request that timed out leaves the client connected: it is made to reconnect, as asyncua's watchdog
    does when its re-creation fails, so that a restore comes again.
    """

    async def restore_or_keep() -> None:
        try:
            await restore()
        except Exception as exc:
            if not lost(exc):
                raise
            if client.uaclient.state is UaClientState.CONNECTED:
                client.uaclient.notify_transport_lost()
            log.warning(
                "lost the OPC UA server restoring the subscription after a reconnection (%s: %s); asyncua "
                "reconnects and restores it again",
                type(exc).__name__,
                exc,
            )

    return restore_or_keep


def _unwatched(
    subscription: Subscription, restore: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """`restore`, during which asyncua's stale-subscription watchdog leaves the subscription alone.

    The restore's transfer and republish requests are each a round trip: over a slow link on a loaded
    machine the watchdog found the subscription stale between the transfer and the end of the restore (the
    clean-clone CI of fe7881e) and deleted it on the server, with the changes the server kept for it. Each
    request has the client's timeout, so the restore holds the watchdog off no longer than its requests;
    asyncua's restore counts the subscription as heard from when it succeeds.
    """
    restoring = False
    is_stale = subscription.is_stale

    def stale(margin: float) -> bool:
        return not restoring and is_stale(margin)

    async def restore_unwatched() -> None:
        nonlocal restoring
        restoring = True
        try:
            await restore()
        finally:
            restoring = False

    subscription.is_stale = stale
    return restore_unwatched


def _fresh_on_reconnection(client: Client, subscription: Subscription) -> Callable[[], None]:
    """Count the subscription as just heard from whenever a reconnection is made; the call that stops it.

    asyncua's stale-subscription watchdog skips a client that is not CONNECTED, but the client is CONNECTED
    again before asyncua's restore has transferred the subscription and asked for what it missed: a
    subscription silent through an outage was found stale in that window and deleted on the server, with
    the changes the server kept for it. Counted from here, the restore itself is left alone (`_unwatched`).
    """

    def heard(state: UaClientState) -> None:
        if state is UaClientState.CONNECTED and subscription.last_publish_at is not None:
            subscription.last_publish_at = time.monotonic()

    # A raw listener, called as the state changes: a queued one may run after the watchdog's next tick.
    return client.uaclient._add_state_listener(heard)
