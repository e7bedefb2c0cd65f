"""Which implementation of the shared state a process uses, and the thread that keeps it fresh.

`SharedState.from_settings(settings)`: Redis when QABOT_REDIS_URL is set, this process's own state
otherwise. `start(engine)` starts the keeper: every second it sends this replica's heartbeat and makes
the engine follow the `current` link (so an idle replica switches to a version another process
published without waiting for a question); with Redis it also listens to the reload broadcast and
reloads at once when a version is announced.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from bot.conversation.ratelimit import ConversationLimits
from bot.state.base import Announcer, EventLog, RateLimits, RebuildLock
from bot.state.local import LocalRebuildLock, NoAnnouncer, RecentEvents

log = logging.getLogger("qabot.state")

KEEPER_INTERVAL_S = 1.0


def new_replica_id() -> str:
    """Unique per process, readable in logs: host, pid and a random suffix."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class SharedState:
    events: EventLog
    limits: RateLimits
    rebuild_lock: RebuildLock
    announcer: Announcer
    replica_id: str
    link: Any = None  # RedisLink when QABOT_REDIS_URL is set
    _keeper: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def local(cls, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> SharedState:
        return cls(
            events=RecentEvents(clock=clock),
            limits=ConversationLimits(
                user_limit=settings.user_rate_limit,
                channel_limit=settings.channel_rate_limit,
                window_s=settings.rate_window_s,
                clock=clock,
            ),
            rebuild_lock=LocalRebuildLock(),
            announcer=NoAnnouncer(),
            replica_id=new_replica_id(),
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, replica_id: str | None = None) -> SharedState:
        if not settings.redis_url:
            return cls.local(settings)
        from bot.conversation.privacy import Pseudonymizer
        from bot.state.redis_state import RedisAnnouncer, RedisEvents, RedisLink, RedisRateLimits, RedisRebuildLock

        replica_id = replica_id or new_replica_id()
        link = RedisLink(settings.redis_url, replica_id=replica_id)
        local = cls.local(settings)
        state = cls(
            events=RedisEvents(link),
            limits=RedisRateLimits(
                link,
                user_limit=settings.user_rate_limit,
                channel_limit=settings.channel_rate_limit,
                window_s=settings.rate_window_s,
                key=Pseudonymizer(settings.secret_key).db_key,
                fallback=local.limits,  # type: ignore[arg-type]
            ),
            rebuild_lock=RedisRebuildLock(link),
            announcer=RedisAnnouncer(link),
            replica_id=replica_id,
            link=link,
        )
        if link.ping():
            log.info("shared state in Redis at %s (replica %s)", link.where, replica_id)
        return state

    # ---- health ------------------------------------------------------------------------------

    def redis_status(self) -> str | None:
        """None without Redis; "ok", or why this replica is using its own state."""
        return None if self.link is None else self.link.status()

    def redis_reachable(self) -> bool | None:
        """None without Redis; else whether it answers a ping now."""
        return None if self.link is None else self.link.ping()

    # ---- the keeper --------------------------------------------------------------------------

    def start(self, engine: Any, *, interval_s: float = KEEPER_INTERVAL_S) -> None:
        """Start the keeper thread (once)."""
        if self._keeper is not None:
            return
        self._stop.clear()
        self._keeper = threading.Thread(
            target=self._keep, args=(engine, interval_s), name="qabot-shared-state", daemon=True
        )
        self._keeper.start()

    def close(self) -> None:
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=5)
            self._keeper = None
        if self.link is not None:
            self.link.close()

    def _keep(self, engine: Any, interval_s: float) -> None:
        pubsub: Any = None
        errors: tuple[type[BaseException], ...] = (OSError,)
        if self.link is not None:
            import redis

            from bot.state.redis_state import INDEX_CHANNEL

            errors = (redis.RedisError, OSError, ValueError)
        follow = getattr(engine, "follow_current", None)
        heartbeat = getattr(self.events, "heartbeat", None)
        while not self._stop.is_set():
            if heartbeat is not None:
                heartbeat()  # also how a replica finds out that Redis is back
            announced = None
            if self.link is not None and pubsub is None and self.link.up:
                try:
                    pubsub = self.link.client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(INDEX_CHANNEL)
                except errors as err:
                    self.link.failed("listening for new index versions", err)
                    pubsub = None
            if pubsub is not None:
                try:
                    message = pubsub.get_message(timeout=interval_s)
                    if message is not None:
                        announced = message.get("data")
                except errors as err:
                    self.link.failed("listening for new index versions", err)
                    _close_quietly(pubsub)
                    pubsub = None
                    self._stop.wait(interval_s)
            else:
                self._stop.wait(interval_s)
            if follow is not None:
                try:
                    changed = follow()
                except Exception:  # the engine logs what it could not load; the keeper goes on
                    log.exception("could not follow the index's current version")
                    changed = False
                if announced is not None and changed:
                    log.info("reloaded the index on a broadcast from another replica")
        _close_quietly(pubsub)


def _close_quietly(pubsub: Any) -> None:
    if pubsub is None:
        return
    try:
        pubsub.close()
    except Exception:  # a connection that is gone already
        pass
