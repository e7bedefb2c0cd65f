"""The interfaces the conversation layer and the adapters use for state that replicas share."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from bot.conversation.ratelimit import RateDecision


class EventLog(Protocol):
    """Which events were already taken on (Slack retries an event it thinks was lost, with the same id),
    and which accepted events are still being answered."""

    def seen_before(self, key: str) -> bool:
        """Record `key`; True when it was already taken on (here or by another replica) within the TTL."""
        ...

    def accept(self, key: str, payload: str) -> None:
        """An event was acknowledged to the platform but is not answered yet: keep `payload` until `finish`,
        so that another replica can answer it if this one dies first."""
        ...

    def finish(self, key: str) -> None:
        """The accepted event `key` is dealt with (answered, or found not to need an answer)."""
        ...

    def adopt(self) -> list[str]:
        """The payloads of events that replicas which died had accepted but not finished; they are this
        replica's to answer now (each is handed out once)."""
        ...


class RateLimits(Protocol):
    """The per-user and per-channel question limits."""

    def check(self, platform: str, user_id: str, channel_id: str) -> RateDecision: ...


class RebuildLock(Protocol):
    """One rebuild or rollback at a time across every replica."""

    def hold(self) -> AbstractContextManager[bool]:
        """Enter: True when this process may rebuild now, False when another one holds the lock."""
        ...


class Announcer(Protocol):
    """Tells every replica that `current` points at a new index version."""

    def announce(self, version: str) -> None: ...
