"""Response bodies a worker keeps while the table they were read from has not changed."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from prometheus_client import Counter

LOOKUPS = Counter("servicecast_api_page_cache", "Cached page lookups, by page and result", ["page", "result"])


class VersionedPages:
    """The latest bodies by request, each served only while its table's change counter stays the same.

    Read the counter before the data: a body read after a concurrent write is then kept under the
    older counter and simply missed next time, never served as current when it is not.
    """

    def __init__(self, page: str, size: int = 256) -> None:
        self.size = size
        self._bodies: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self._hits, self._misses = LOOKUPS.labels(page, "hit"), LOOKUPS.labels(page, "miss")

    def get(self, key: Hashable, version: int | None) -> bytes | None:
        """The body kept for `key` at this version, or None."""
        found = self._bodies.get(key)
        if found is None or version is None or found[0] != version:
            self._misses.inc()
            return None
        self._hits.inc()
        self._bodies.move_to_end(key)
        return found[1]

    def put(self, key: Hashable, version: int | None, body: bytes) -> None:
        """Keep `body` for `key` at this version, dropping the least recently used beyond `size`."""
        if version is None:
            return
        self._bodies[key] = (version, body)
        self._bodies.move_to_end(key)
        while len(self._bodies) > self.size:
            self._bodies.popitem(last=False)
