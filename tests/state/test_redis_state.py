"""The shared-state interfaces on a real redis-server: two `SharedState`s play two replicas.

Each test would fail with the in-process implementations (each replica alone): the second replica
would take a retry on again, count its own rate limits, take the rebuild lock, hear nothing of a new
version, and nobody would answer what a dead replica had accepted.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from bot.config import Settings
from bot.state.redis_state import HEARTBEAT_TTL_S
from bot.state.shared import SharedState

SECRET = "replica-secret-0123456789"


def replicas(url: str, *names: str, **settings) -> list[SharedState]:
    base = Settings(redis_url=url, secret_key=SECRET, **settings)
    return [SharedState.from_settings(base, replica_id=name) for name in names]


@pytest.fixture
def pair(redis_url):
    states = replicas(redis_url, "A", "B", user_rate_limit=2, channel_rate_limit=3, rate_window_s=60)
    yield states
    for state in states:
        state.close()


def test_a_retry_on_another_replica_is_taken_on_once(pair):
    a, b = pair
    assert not a.events.seen_before("slack:Ev1")
    assert b.events.seen_before("slack:Ev1")  # the retry landed on B
    assert a.events.seen_before("slack:Ev1")  # and again on A
    assert not b.events.seen_before("slack:Ev2")


def test_local_state_alone_would_answer_the_retry_twice(redis_url):
    a, b = (SharedState.local(Settings()) for _ in range(2))
    assert not a.events.seen_before("slack:Ev1") and not b.events.seen_before("slack:Ev1")


def test_the_user_limit_holds_across_replicas_and_the_asker_is_told_once(pair):
    a, b = pair
    assert a.limits.check("slack", "U1", "C1").allowed
    assert b.limits.check("slack", "U1", "C1").allowed
    denied = a.limits.check("slack", "U1", "C1")
    assert not denied.allowed and denied.scope == "user" and not denied.already_told
    assert 58 <= denied.retry_after <= 60 and denied.retry_after_s == 60
    again = b.limits.check("slack", "U1", "C1")
    assert not again.allowed and again.already_told  # told once, by whichever replica
    assert b.limits.check("slack", "U2", "C1").allowed  # the refused questions did not use up the channel


def test_the_channel_limit_holds_across_replicas_and_each_asker_is_told_once(pair):
    a, b = pair
    for replica, user in ((a, "U1"), (b, "U2"), (a, "U3")):
        assert replica.limits.check("slack", user, "C1").allowed
    denied = b.limits.check("slack", "U4", "C1")
    assert not denied.allowed and denied.scope == "channel" and not denied.already_told
    assert a.limits.check("slack", "U4", "C1").already_told
    assert not a.limits.check("slack", "U5", "C1").already_told  # another asker is told too
    assert a.limits.check("discord", "U4", "C1").allowed  # platforms do not share ids


def test_the_rebuild_lock_is_held_once_across_replicas_and_renewed_while_held(redis_url):
    a, b = replicas(redis_url, "A", "B")
    a.rebuild_lock.ttl_s = b.rebuild_lock.ttl_s = 0.6
    try:
        with a.rebuild_lock.hold() as mine:
            assert mine
            time.sleep(1.5)  # longer than the lock's TTL: the holder keeps renewing it
            with b.rebuild_lock.hold() as theirs:
                assert not theirs
        with b.rebuild_lock.hold() as theirs:
            assert theirs
    finally:
        a.close()
        b.close()


class FollowingEngine:
    """Stands in for EngineHolder: counts how often the keeper asked it to follow `current`."""

    def __init__(self):
        self.calls = 0
        self.called = threading.Event()

    def follow_current(self) -> bool:
        self.calls += 1
        self.called.set()
        return True


def test_a_new_version_is_announced_to_every_replica_at_once(pair):
    a, b = pair
    engine = FollowingEngine()
    b.start(engine, interval_s=30.0)  # without the broadcast B would look again only in 30 s
    deadline = time.monotonic() + 10
    while engine.calls == 0 and time.monotonic() < deadline:  # its first look, right after subscribing
        time.sleep(0.05)
    time.sleep(0.3)
    engine.called.clear()
    before = engine.calls
    a.announcer.announce("20240101T000000Z-new")
    assert engine.called.wait(5), "the broadcast did not reach the other replica"
    assert engine.calls == before + 1


def test_events_a_dead_replica_accepted_are_answered_by_a_live_one(redis_url):
    a, b, c = replicas(redis_url, "A", "B", "C")
    try:
        for n in (1, 2, 3):
            a.events.accept(f"slack:Ev{n}", f'{{"event_id": "Ev{n}"}}')
        assert not a.events.seen_before("slack:Ev1") and not a.events.seen_before("slack:Ev2")
        a.events.finish("slack:Ev1")  # answered before A died
        assert not c.events.seen_before("slack:Ev3")  # Slack's retry of Ev3 reached C, which answers it
        assert b.events.adopt() == []  # A is alive (its heartbeat is fresh)

        a.link.client.delete(f"qabot:replica:{a.replica_id}")  # A died: its heartbeat expires
        adopted = b.events.adopt()
        assert adopted == ['{"event_id": "Ev2"}']  # Ev1 was answered, Ev3 is C's
        assert b.events.adopt() == [] and c.events.adopt() == []  # handed out once
        assert not b.events.seen_before("slack:Ev2")  # B answers it now...
        assert c.events.seen_before("slack:Ev2") and a.events.seen_before("slack:Ev2")  # ...and only B
        b.events.finish("slack:Ev2")
        assert c.events.seen_before("slack:Ev2")
    finally:
        for state in (a, b, c):
            state.close()


def test_a_replica_that_keeps_beating_keeps_its_events(redis_url):
    a, b = replicas(redis_url, "A", "B")
    try:
        a.start(FollowingEngine(), interval_s=0.2)
        a.events.accept("slack:Ev1", "{}")
        time.sleep(HEARTBEAT_TTL_S + 0.5)
        assert b.events.adopt() == []
    finally:
        a.close()
        b.close()


def test_without_redis_a_replica_keeps_answering_on_its_own_and_recovers_without_a_restart(own_redis, caplog):
    caplog.set_level(logging.INFO, logger="qabot.redis")
    [a] = replicas(own_redis.url, "A", user_rate_limit=1, channel_rate_limit=10)
    [b] = replicas(own_redis.url, "B", user_rate_limit=1, channel_rate_limit=10)
    try:
        assert a.redis_reachable() and a.redis_status() == "ok"
        own_redis.stop()
        caplog.clear()
        started = time.monotonic()
        assert not a.events.seen_before("slack:Ev1")  # answered, from this process' own state
        assert a.events.seen_before("slack:Ev1")  # and a retry on the same replica still refused
        assert a.limits.check("slack", "U1", "C1").allowed
        assert not a.limits.check("slack", "U1", "C1").allowed  # the limit holds in-process
        with a.rebuild_lock.hold() as mine:
            assert mine  # the index folder's file lock is the only lock now
        a.announcer.announce("v2")  # nothing to tell: no error either
        assert time.monotonic() - started < 3  # one failed connection, then Redis is skipped
        assert caplog.text.count("cannot be reached") == 1  # said once, not once per call
        assert not a.redis_reachable() and "unreachable" in (a.redis_status() or "")

        own_redis.restart()
        time.sleep(1.1)  # the breaker's pause
        caplog.clear()
        assert not a.events.seen_before("slack:Ev2")
        assert b.events.seen_before("slack:Ev2")  # shared again, no restart of either replica
        assert "answers again" in caplog.text
        assert a.redis_status() == "ok"
    finally:
        a.close()
        b.close()
