"""The shared-state interfaces on Redis, each with this process's own state as its fallback.

Every call goes through `RedisLink.call(what, op, fallback)`: Redis answers, or the in-process
implementation does. The first failure is logged once ("cannot be reached ... answering with this
replica's own state"), further calls skip Redis for `retry_after_s` (so an unreachable Redis costs one
timeout now and then, not one per question), and the first call that succeeds again logs that the
shared state is back. Nothing here raises because Redis is away.

Keys (all under `qabot:`): `ev:<hash>` an event taken on (value: the replica that took it, or "done"),
`inflight:<replica>` the events a replica acknowledged and has not answered yet, `replica:<id>` a
replica's heartbeat, `limits:...` the `limits` library's moving windows, `told:<hash>` "this asker was
told about the limit", `rebuild-lock`, `index:version` and the pub/sub channel `index`. User and channel
ids only appear as keyed hashes (QABOT_SECRET_KEY), event ids as plain hashes.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import redis
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.conversation.ratelimit import ConversationLimits, RateDecision
from bot.state.local import DEFAULT_EVENT_TTL_S, RecentEvents

log = logging.getLogger("qabot.redis")

T = TypeVar("T")

PREFIX = "qabot:"
INDEX_CHANNEL = PREFIX + "index"
INDEX_VERSION_KEY = PREFIX + "index:version"
REBUILD_LOCK_KEY = PREFIX + "rebuild-lock"
HEARTBEAT_TTL_S = 8.0  # a replica whose heartbeat is older than this is dead: its accepted events are adopted
INFLIGHT_TTL_S = 900  # accepted events nobody finished within 15 minutes are dropped with their hash
DEFAULT_TIMEOUT_S = 1.0  # connect and read timeout of every Redis call
DEFAULT_RETRY_AFTER_S = 1.0  # after a failure, Redis is skipped this long before the next try


class RedisLink:
    """One connection pool to Redis, and whether Redis answers (a circuit breaker with logging)."""

    def __init__(
        self,
        url: str,
        *,
        replica_id: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_after_s: float = DEFAULT_RETRY_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = url
        self.replica_id = replica_id
        self.retry_after_s = retry_after_s
        self._clock = clock
        # no retries inside redis-py: a failure falls back at once and the breaker decides when to try again
        self.pool = redis.ConnectionPool.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=15,
        )
        self.client = redis.Redis(connection_pool=self.pool)
        kwargs = self.pool.connection_kwargs
        self.where = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}" if "host" in kwargs else "a socket"
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_try = 0.0
        self.last_error = ""

    @property
    def up(self) -> bool:
        """False from a failed call until a call succeeds again."""
        return self._down_since is None

    def status(self) -> str:
        if self._down_since is None:
            return "ok"
        return f"unreachable for {self._clock() - self._down_since:.0f} s ({self.last_error}); using in-process state"

    def call(self, what: str, op: Callable[[redis.Redis], T], fallback: Callable[[], T]) -> T:
        """op(client), or fallback() when Redis is known to be down or fails now."""
        if self._down_since is not None and self._clock() < self._next_try:
            return fallback()
        try:
            result = op(self.client)
        except (redis.RedisError, OSError) as err:
            self.failed(what, err)
            return fallback()
        self.succeeded()
        return result

    def ping(self) -> bool:
        """Ask Redis now, whatever the breaker says (health checks)."""
        try:
            self.client.ping()
        except (redis.RedisError, OSError) as err:
            self.failed("answering a ping", err)
            return False
        self.succeeded()
        return True

    def failed(self, what: str, err: BaseException) -> None:
        with self._lock:
            now = self._clock()
            first = self._down_since is None
            if first:
                self._down_since = now
            self._next_try = now + self.retry_after_s
            self.last_error = type(err).__name__
        if first:
            log.warning(
                "Redis at %s cannot be reached (%s while %s): this replica keeps answering with its own "
                "in-process state (retries, rate limits, rebuild lock) until Redis is back",
                self.where,
                type(err).__name__,
                what,
            )

    def succeeded(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.warning(
                "Redis at %s answers again after %.1f s: shared state is back", self.where, self._clock() - since
            )

    def close(self) -> None:
        self.pool.disconnect()


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:40]


# Take an event on: new, or already taken by this very replica (an event adopted from a dead one).
_SEEN = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 0
end
if v == ARGV[1] then return 0 end
return 1
"""

# An event this replica took on is dealt with: no longer in flight, and "done" for every replica (a
# duplicate that another replica is still answering stays theirs).
_FINISH = """
redis.call('HDEL', KEYS[1], KEYS[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('SET', KEYS[2], 'done', 'KEEPTTL') end
return 1
"""

# Move a dead replica's unfinished events to this replica, unless its heartbeat is back or another live
# replica took the event on meanwhile (a retry delivered to it); returns the payloads to answer.
_ADOPT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {} end
local entries = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #entries, 2 do
  local evkey = entries[i]
  local v = redis.call('GET', evkey)
  if not v then
    redis.call('SET', evkey, ARGV[2], 'EX', ARGV[3])
  elseif v == ARGV[1] then
    redis.call('SET', evkey, ARGV[2], 'KEEPTTL')
  end
  if (not v) or v == ARGV[1] then
    redis.call('HSET', KEYS[3], evkey, entries[i + 1])
    table.insert(out, entries[i + 1])
  end
end
redis.call('DEL', KEYS[1])
if #out > 0 then redis.call('EXPIRE', KEYS[3], ARGV[4]) end
return out
"""


class RedisEvents:
    """Event de-duplication with SET NX + TTL, and the events this replica accepted but has not answered.

    Every key is also recorded in this process (`local`), so a retry of an event this replica saw is
    refused even while Redis is away; while it is away, a retry that lands on another replica may be
    answered a second time (each replica knows only its own events)."""

    def __init__(self, link: RedisLink, *, local: RecentEvents | None = None, ttl_s: float = DEFAULT_EVENT_TTL_S):
        self.link = link
        self.local = local or RecentEvents(ttl_s=ttl_s, max_size=100_000)
        self.ttl_s = math.ceil(ttl_s)
        self._seen = link.client.register_script(_SEEN)
        self._adopt = link.client.register_script(_ADOPT)
        self._finish = link.client.register_script(_FINISH)

    @property
    def replica(self) -> str:
        return self.link.replica_id

    def _key(self, key: str) -> str:
        return f"{PREFIX}ev:{_hash(key)}"

    def _inflight(self, replica: str | None = None) -> str:
        return f"{PREFIX}inflight:{replica or self.replica}"

    def seen_before(self, key: str) -> bool:
        here = self.local.seen_before(key)
        if here:
            return True
        taken_elsewhere = self.link.call(
            "de-duplicating an event",
            lambda r: bool(self._seen(keys=[self._key(key)], args=[self.replica, self.ttl_s], client=r)),
            lambda: False,
        )
        return taken_elsewhere

    def accept(self, key: str, payload: str) -> None:
        entry = json.dumps({"key": key, "payload": payload, "at": time.time()})

        def op(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=False)
            pipe.hset(self._inflight(), self._key(key), entry)
            pipe.expire(self._inflight(), INFLIGHT_TTL_S)
            pipe.set(self._heartbeat_key(), "1", px=int(HEARTBEAT_TTL_S * 1000))
            pipe.execute()

        self.link.call("recording an accepted event", op, lambda: None)

    def finish(self, key: str) -> None:
        self.link.call(
            "finishing an event",
            lambda r: self._finish(keys=[self._inflight(), self._key(key)], args=[self.replica], client=r),
            lambda: None,
        )

    def heartbeat(self) -> None:
        """This replica is alive (called every second or so by the keeper)."""
        self.link.call(
            "sending the heartbeat",
            lambda r: r.set(self._heartbeat_key(), "1", px=int(HEARTBEAT_TTL_S * 1000)),
            lambda: None,
        )

    def _heartbeat_key(self, replica: str | None = None) -> str:
        return f"{PREFIX}replica:{replica or self.replica}"

    def adopt(self) -> list[str]:
        return self.link.call("adopting the events of dead replicas", self._adopt_all, list)

    def _adopt_all(self, r: redis.Redis) -> list[str]:
        payloads: list[str] = []
        own = self._inflight()
        r.set(self._heartbeat_key(), "1", px=int(HEARTBEAT_TTL_S * 1000))  # the adopter is alive
        for raw in r.scan_iter(match=f"{PREFIX}inflight:*", count=200):
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            dead = name.removeprefix(f"{PREFIX}inflight:")
            if name == own or not dead:
                continue
            entries = self._adopt(
                keys=[name, self._heartbeat_key(dead), own],
                args=[dead, self.replica, self.ttl_s, INFLIGHT_TTL_S],
                client=r,
            )
            for entry in entries or []:
                try:
                    data = json.loads(entry)
                    payloads.append(str(data["payload"]))
                except (ValueError, KeyError, TypeError):
                    continue
            if entries:
                log.warning("replica %s stopped answering: %d accepted event(s) are answered here", dead, len(entries))
        return payloads


class RedisRateLimits:
    """The two question limits on the `limits` library's moving window over Redis; "told once" in Redis too.

    The user limit is looked at first and the channel's counted before the user's, so a question
    refused by one limit uses up neither (unless another replica takes the user's last slot in between:
    then the channel's slot is spent on a refused question, never more questions let through)."""

    def __init__(
        self,
        link: RedisLink,
        *,
        user_limit: int,
        channel_limit: int,
        window_s: float,
        key: bytes,
        fallback: ConversationLimits,
    ):
        self.link = link
        self.fallback = fallback
        self._key = key
        self._limiter = MovingWindowRateLimiter(
            RedisStorage(link.url, connection_pool=link.pool, key_prefix=f"{PREFIX}limits")
        )
        seconds = max(1, math.ceil(window_s))
        self._user = RateLimitItemPerSecond(user_limit, seconds)
        self._channel = RateLimitItemPerSecond(channel_limit, seconds)

    def _id(self, kind: str, platform: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}:{platform}:{value}".encode("utf-8", "replace"), hashlib.sha256).hexdigest()[
            :32
        ]

    def check(self, platform: str, user_id: str, channel_id: str) -> RateDecision:
        return self.link.call(
            "checking a rate limit",
            lambda r: self._check(r, platform, user_id, channel_id),
            lambda: self.fallback.check(platform, user_id, channel_id),
        )

    def _wait(self, item: Any, ident: str) -> float:
        stats = self._limiter.get_window_stats(item, ident)
        return max(0.001, stats.reset_time - time.time())

    def _told(self, r: redis.Redis, what: str, wait: float) -> bool:
        """Record that the asker was told; True when they had already been told in this window."""
        return r.set(f"{PREFIX}told:{what}", "1", nx=True, px=max(1, int(wait * 1000))) is None

    def _check(self, r: redis.Redis, platform: str, user_id: str, channel_id: str) -> RateDecision:
        user = self._id("user", platform, user_id)
        channel = self._id("channel", platform, channel_id)
        if not self._limiter.test(self._user, user):
            wait = self._wait(self._user, user)
            if not self._limiter.test(self._channel, channel):
                wait = max(wait, self._wait(self._channel, channel))
            return RateDecision(False, wait, self._told(r, user, wait), "user")
        if not self._limiter.hit(self._channel, channel):
            wait = self._wait(self._channel, channel)
            # a flooded channel: tell each asker once
            return RateDecision(False, wait, self._told(r, f"{channel}:{user}", wait), "channel")
        if not self._limiter.hit(self._user, user):  # another replica took the user's last slot just now
            wait = self._wait(self._user, user)
            return RateDecision(False, wait, self._told(r, user, wait), "user")
        return RateDecision(True)


class RedisRebuildLock:
    """One rebuild across all replicas: a Redis lock that expires `ttl_s` after its holder stops renewing it
    (a replica that dies mid-build does not block rebuilds for long). When Redis is away, the index
    folder's file lock (taken by every build) is the only one: one build at a time per host."""

    def __init__(self, link: RedisLink, *, name: str = REBUILD_LOCK_KEY, ttl_s: float = 30.0):
        self.link = link
        self.name = name
        self.ttl_s = ttl_s

    def held_elsewhere(self) -> bool:
        return bool(self.link.call("looking at the rebuild lock", lambda r: r.exists(self.name), lambda: 0))

    @contextlib.contextmanager
    def hold(self) -> Iterator[bool]:
        lock = self.link.client.lock(self.name, timeout=self.ttl_s, blocking=False, thread_local=False)
        acquired = self.link.call("taking the rebuild lock", lambda _r: bool(lock.acquire()), lambda: None)
        if acquired is None:
            log.warning("no rebuild lock shared with other replicas (Redis is away): only this host's file lock")
            yield True
            return
        if not acquired:
            yield False
            return
        stop = threading.Event()

        def keep() -> None:
            while not stop.wait(self.ttl_s / 3):
                self.link.call("renewing the rebuild lock", lambda _r: lock.reacquire(), lambda: None)

        keeper = threading.Thread(target=keep, name="qabot-rebuild-lock", daemon=True)
        keeper.start()
        try:
            yield True
        finally:
            stop.set()
            keeper.join()
            with contextlib.suppress(redis.RedisError, OSError):
                lock.release()


class RedisAnnouncer:
    """Publishes a new index version: the `index:version` key, and a message on the `index` channel that
    every replica's keeper listens to (it then reloads at once, instead of at its next look at `current`)."""

    def __init__(self, link: RedisLink):
        self.link = link

    def announce(self, version: str) -> None:
        def op(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=False)
            pipe.set(INDEX_VERSION_KEY, version)
            pipe.publish(INDEX_CHANNEL, version)
            pipe.execute()

        self.link.call("announcing the new index version", op, lambda: None)
