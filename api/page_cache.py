"""Response bodies a worker keeps while the table they were read from has not changed."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from prometheus_client import Counter

LOOKUPS = Counter("servicecast_api_page_cache", "Cached page lookups, by page and result", ["page", "result"])


def approximate_bytes(key: Hashable) -> int:
    """Memory a key holds: the tuple and each part (a frozenset of customer ids counts its members too)."""
    parts = key if isinstance(key, tuple) else ()
    size = sys.getsizeof(key) + sum(sys.getsizeof(part) for part in parts)
    # a frozenset's getsizeof counts its hash table, not the ints it holds
    return size + sum(32 * len(part) for part in (key, *parts) if isinstance(part, frozenset))


class VersionedPages:
    """The latest bodies by request, each served while its table's change counter has not passed it.

    Read the counter before the data: a body read after a concurrent write is then kept under the
    older counter and simply missed next time, never served as current when it is not. Counters only
    rise, so a body kept at a counter holds every write up to it and serves any request that read that
    counter or an earlier one (a request's counter read can be overtaken by another request's whole
    read); an older body never replaces a newer one. Bodies and keys together stay within `max_bytes`,
    the least recently used going first; routes run in several threads, so every change holds a lock.
    Requests that miss the same key together wait for one read of it at their counter or a later one
    (`get_or_build`): after a write, every request in flight misses at once.
    """

    def __init__(self, page: str, max_bytes: int) -> None:
        self.max_bytes, self.bytes = max_bytes, 0
        self._bodies: OrderedDict[Hashable, tuple[int, bytes, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, _Build] = {}
        self._hits, self._misses = LOOKUPS.labels(page, "hit"), LOOKUPS.labels(page, "miss")

    def get(self, key: Hashable, version: int | None) -> bytes | None:
        """The body kept for `key` at this version or a later one, or None."""
        with self._lock:
            found = self._bodies.get(key)
            if found is None or version is None or found[0] < version:
                self._misses.inc()
                return None
            self._bodies.move_to_end(key)
        self._hits.inc()
        return found[1]

    def get_or_build(
        self, key: Hashable, version: int | None, build: Callable[[], bytes | None]
    ) -> bytes | None:
        """The body for `key` at this version or later: kept, being built by another request, or built now.

        `build` returns None when it cannot build the body; that None is everyone's answer then.
        """
        body = self.get(key, version)
        if body is not None or version is None:
            return body if body is not None else build()
        with self._lock:
            pending = self._building.get(key)
            # A read under way at an earlier counter may miss a write this request has seen.
            owner = pending is None or pending.version < version
            if owner:
                pending = self._building[key] = _Build(version)
        if not owner:
            pending.done.wait()
            return pending.body
        try:
            pending.body = build()
        finally:
            with self._lock:
                if self._building.get(key) is pending:
                    del self._building[key]
            pending.done.set()
        if pending.body is not None:
            self.put(key, version, pending.body)
        return pending.body

    def put(self, key: Hashable, version: int | None, body: bytes) -> None:
        """Keep `body` for `key` at this version, unless a newer one is kept or it exceeds the budget."""
        size = len(body) + approximate_bytes(key)
        if version is None or size > self.max_bytes:
            return
        with self._lock:
            old = self._bodies.get(key)
            if old is not None and old[0] > version:
                return
            if old is not None:
                del self._bodies[key]
                self.bytes -= old[2]
            self._bodies[key] = (version, body, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                self.bytes -= self._bodies.popitem(last=False)[1][2]


class _Build:
    """A body one request is reading at `version` for the others that missed the same key."""

    __slots__ = ("body", "done", "version")

    def __init__(self, version: int) -> None:
        self.version = version
        self.body: bytes | None = None
        self.done = threading.Event()
