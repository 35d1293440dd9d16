"""The queue between the MQTT thread and the writer, bounded in messages and in payload bytes."""

from __future__ import annotations

import threading
import time
from collections import deque

from ingest.schemas import Envelope

_NEVER = 2**62


class Inbox:
    """A FIFO of envelopes; `put` blocks while either bound is reached, the writer takes whole batches."""

    def __init__(self, *, max_messages: int, max_bytes: int) -> None:
        self.maxsize = max_messages
        self.max_bytes = max_bytes
        self._items: deque[Envelope] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._closed = False
        # How many waiting messages wake the writer: 1 while it waits for a first one, the rest of its
        # batch while it collects, never while it writes. Waking it per message cost more than the message.
        self._wake_at = _NEVER

    def qsize(self) -> int:
        """Messages waiting."""
        return len(self._items)

    def nbytes(self) -> int:
        """Payload bytes waiting."""
        return self._bytes

    def close(self) -> None:
        """Refuse what comes from now on and release a `put` that waits; what is queued can still be taken."""
        with self._lock:
            self._closed = True
            self._not_full.notify_all()

    def put(self, envelope: Envelope) -> bool:
        """Append, waiting while the queue is full; True if it had to wait. A closed inbox drops the envelope:
        it is never acked, so the broker delivers it again."""
        size = len(envelope.payload)
        waited = False
        with self._lock:
            items = self._items
            # One message larger than the byte bound still goes in alone, or it could never be taken.
            while items and (len(items) >= self.maxsize or self._bytes + size > self.max_bytes):
                if self._closed:
                    break
                waited = True
                self._not_full.wait()
            if self._closed:
                return waited
            items.append(envelope)
            self._bytes += size
            if len(items) >= self._wake_at:
                self._wake_at = _NEVER
                self._not_empty.notify()
        return waited

    def get_batch(self, max_n: int, *, wait_s: float, linger_s: float, idle_s: float) -> list[Envelope]:
        """Up to `max_n` envelopes: waits `wait_s` for the first, then up to `linger_s` for the rest, but
        stops early when none arrives for `idle_s`."""
        items = self._items
        with self._lock:
            if not items:
                self._wake_at = 1
                self._not_empty.wait(wait_s)
                self._wake_at = _NEVER
                if not items:
                    return []
            deadline = time.monotonic() + linger_s
            while len(items) < max_n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                before = len(items)
                self._wake_at = max_n
                self._not_empty.wait(min(idle_s, remaining))
                self._wake_at = _NEVER
                if len(items) == before:
                    break  # the stream paused: commit what there is rather than wait out the linger
            return self._take(max_n)

    def _take(self, n: int) -> list[Envelope]:
        items = self._items
        out = [items.popleft() for _ in range(min(n, len(items)))]
        self._bytes -= sum([len(e.payload) for e in out])
        self._not_full.notify_all()
        return out
