"""Sliding-window rate limits per user and per channel.

A sliding log (timestamps of the last `limit` questions) is exact and cheap at chat volumes: a key
holds at most `limit` floats. Someone over the limit is told once when to retry; further messages
in the same window get no reply at all, so the bot never adds to the noise it is limiting.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: float = 0.0  # seconds until a question would be allowed again
    already_told: bool = False  # the asker was already told about this window: stay silent
    scope: str = ""  # "user" | "channel": which limit was hit

    @property
    def retry_after_s(self) -> int:
        """Whole seconds to tell a person (never 0 while denied)."""
        return max(1, math.ceil(self.retry_after)) if not self.allowed else 0


class RateLimiter:
    """At most `limit` hits per `window_s` seconds for each key."""

    def __init__(self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic):
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[Hashable, deque[float]] = {}
        self._told_until: dict[Hashable, float] = {}
        self._lock = threading.Lock()
        self._calls = 0

    def _prune(self, key: Hashable, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        return hits

    def peek(self, key: Hashable) -> float:
        """0.0 when a hit would be allowed now, else seconds until it would be."""
        with self._lock:
            now = self._clock()
            hits = self._prune(key, now)
            if len(hits) < self.limit:
                return 0.0
            return hits[0] + self.window_s - now

    def hit(self, key: Hashable) -> None:
        with self._lock:
            now = self._clock()
            self._prune(key, now).append(now)
            self._calls += 1
            if self._calls % 1000 == 0:
                self._sweep(now)

    def mark_told(self, key: Hashable, retry_after: float) -> bool:
        """Record that the asker was told; returns True when they had already been told this window."""
        with self._lock:
            now = self._clock()
            if self._told_until.get(key, -math.inf) > now:
                return True
            self._told_until[key] = now + retry_after
            return False

    def check(self, key: Hashable) -> RateDecision:
        """Count one hit if allowed; else say how long to wait and whether the asker was told."""
        wait = self.peek(key)
        if wait <= 0:
            self.hit(key)
            return RateDecision(True)
        return RateDecision(False, wait, self.mark_told(key, wait))

    def _sweep(self, now: float) -> None:
        # forget idle keys so memory stays bounded by the number of *active* users
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window_s]:
            del self._hits[key]
        for key in [k for k, t in self._told_until.items() if t <= now]:
            del self._told_until[key]


class ConversationLimits:
    """The two limits a question must pass: per (platform, user) and per (platform, channel).

    A question denied by one limit does not use up the other: both are checked before either counts.
    """

    def __init__(
        self,
        *,
        user_limit: int,
        channel_limit: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.users = RateLimiter(user_limit, window_s, clock=clock)
        self.channels = RateLimiter(channel_limit, window_s, clock=clock)
        self._lock = threading.Lock()

    def allows(self, platform: str, user_id: str, channel_id: str) -> bool:
        """Whether a question would be allowed now, without counting it (a watched channel's message
        counts only when the bot answers it)."""
        with self._lock:
            return self.users.peek((platform, user_id)) <= 0 and self.channels.peek((platform, channel_id)) <= 0

    def check(self, platform: str, user_id: str, channel_id: str) -> RateDecision:
        ukey, ckey = (platform, user_id), (platform, channel_id)
        with self._lock:  # peek + hit must be atomic across both limiters
            user_wait = self.users.peek(ukey)
            channel_wait = self.channels.peek(ckey)
            if user_wait <= 0 and channel_wait <= 0:
                self.users.hit(ukey)
                self.channels.hit(ckey)
                return RateDecision(True)
        if user_wait > 0:
            # a user over their own limit is told once, whatever the channel's state
            return RateDecision(False, max(user_wait, channel_wait), self.users.mark_told(ukey, user_wait), "user")
        # a flooded channel: tell each asker once, so nobody wonders why the bot went quiet
        return RateDecision(False, channel_wait, self.channels.mark_told(ckey + (user_id,), channel_wait), "channel")
