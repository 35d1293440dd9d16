"""The queue between the MQTT thread and the writer, bounded in messages and in payload bytes."""

from __future__ import annotations

import threading
import time
from collections import deque

from ingest.schemas import Envelope


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

    def qsize(self) -> int:
        """Messages waiting."""
        return len(self._items)

    def nbytes(self) -> int:
        """Payload bytes waiting."""
        return self._bytes

    def put(self, envelope: Envelope) -> bool:
        """Append, waiting while the queue is full; True if it had to wait."""
        size = len(envelope.payload)
        waited = False
        with self._lock:
            items = self._items
            # One message larger than the byte bound still goes in alone, or it could never be taken.
            while items and (len(items) >= self.maxsize or self._bytes + size > self.max_bytes):
                waited = True
                self._not_full.wait()
            items.append(envelope)
            self._bytes += size
            self._not_empty.notify()
        return waited

    def get_batch(self, max_n: int, *, wait_s: float, linger_s: float, idle_s: float) -> list[Envelope]:
        """Up to `max_n` envelopes: waits `wait_s` for the first, then up to `linger_s` for more, but stops
        when none arrives for `idle_s`."""
        with self._lock:
            if not self._items and not self._not_empty.wait(wait_s) and not self._items:
                return []
            batch = self._take(max_n)
            deadline = time.monotonic() + linger_s
            while len(batch) < max_n:
                if self._items:
                    batch += self._take(max_n - len(batch))
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not (self._not_empty.wait(min(idle_s, remaining)) or self._items):
                    break
            return batch

    def _take(self, n: int) -> list[Envelope]:
        items = self._items
        out = [items.popleft() for _ in range(min(n, len(items)))]
        self._bytes -= sum([len(e.payload) for e in out])
        self._not_full.notify_all()
        return out
