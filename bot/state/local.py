"""In-process implementations: one replica, or a replica that cannot reach Redis for now."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator

DEFAULT_EVENT_TTL_S = 600.0  # Slack retries within minutes; a replayed signed request is refused after 5


class RecentEvents:
    """Bounded TTL set of event ids: Slack retries an event it thinks was lost, with the same id.

    In one process nobody else can answer an accepted event, so `accept`/`finish`/`adopt` keep nothing."""

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_EVENT_TTL_S,
        max_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._ttl = ttl_s
        self._max = max_size
        self._clock = clock
        self._seen: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def seen_before(self, key: Hashable) -> bool:
        """Record `key`; True when it was already recorded within the TTL."""
        with self._lock:
            now = self._clock()
            while self._seen and (len(self._seen) > self._max or next(iter(self._seen.values())) <= now - self._ttl):
                self._seen.popitem(last=False)
            if key in self._seen:
                return True
            self._seen[key] = now
            return False

    def accept(self, key: str, payload: str) -> None:
        pass

    def finish(self, key: str) -> None:
        pass

    def adopt(self) -> list[str]:
        return []


class LocalRebuildLock:
    """In one process the coordinator's own lock and the index folder's file lock are enough."""

    @contextlib.contextmanager
    def hold(self) -> Iterator[bool]:
        yield True


class NoAnnouncer:
    """One process: its engine reloads itself; other processes on this host follow the `current` link."""

    def announce(self, version: str) -> None:
        pass
