"""Failed console sign-ins per client address, in a sliding window: too many and the address waits."""

from __future__ import annotations

import math
import threading
from collections import deque
from datetime import datetime, timedelta


class SignInThrottle:
    """Remembers failed sign-ins per address for `window`; `limit` of them lock the address out.

    In memory, so per process: with several API workers a client may fail `limit` times on each
    worker the kernel hands its connections to.
    """

    def __init__(self, *, limit: int, window: timedelta, size: int = 10_000) -> None:
        self.limit, self.window, self.size = limit, window, size
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()  # sync routes run in a thread pool

    def retry_after(self, client: str, now: datetime) -> int | None:
        """Seconds until `client` may try again, or None if it may try now."""
        with self._lock:
            failures = self._recent(client, now)
            if len(failures) < self.limit:
                return None
            # free again once all but `limit - 1` of the failures have left the window
            freed = failures[len(failures) - self.limit] + self.window
            return max(1, math.ceil((freed - now).total_seconds()))

    def failed(self, client: str, now: datetime) -> None:
        """Count a failed sign-in of `client`."""
        with self._lock:
            if client not in self._failures and len(self._failures) >= self.size:
                self._forget_stale(now)
            self._failures.setdefault(client, deque()).append(now)

    def _recent(self, client: str, now: datetime) -> deque[datetime]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] + self.window <= now:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures

    def _forget_stale(self, now: datetime) -> None:
        for client in list(self._failures):
            self._recent(client, now)
        if len(self._failures) >= self.size:  # a flood of addresses, all recent: forget the oldest half
            oldest = sorted(self._failures, key=lambda c: self._failures[c][-1])
            for client in oldest[: self.size // 2]:
                del self._failures[client]
