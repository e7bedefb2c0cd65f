from __future__ import annotations

import pytest

from bot.conversation.ratelimit import ConversationLimits, RateLimiter


def test_sliding_window(clock):
    limiter = RateLimiter(2, 10, clock=clock)
    assert limiter.check("k").allowed
    clock.advance(4)
    assert limiter.check("k").allowed
    denied = limiter.check("k")
    assert not denied.allowed and denied.retry_after == pytest.approx(6) and denied.retry_after_s == 6
    assert not denied.already_told
    assert limiter.check("k").already_told
    clock.advance(6)  # the first hit left the window
    assert limiter.check("k").allowed
    denied = limiter.check("k")
    assert not denied.allowed and not denied.already_told  # a new window: told again


def test_retry_after_is_never_zero_seconds(clock):
    limiter = RateLimiter(1, 10, clock=clock)
    limiter.check("k")
    clock.advance(9.99)
    assert limiter.check("k").retry_after_s == 1


def test_denied_user_does_not_use_up_channel(clock):
    limits = ConversationLimits(user_limit=1, channel_limit=2, window_s=60, clock=clock)
    assert limits.check("slack", "U1", "C1").allowed
    for _ in range(5):
        assert not limits.check("slack", "U1", "C1").allowed
    assert limits.check("slack", "U2", "C1").allowed  # the channel still had one slot
    hit = limits.check("slack", "U3", "C1")
    assert not hit.allowed and hit.scope == "channel" and not hit.already_told
    assert limits.check("slack", "U3", "C1").already_told
    assert not limits.check("slack", "U4", "C1").already_told  # each asker is told once


def test_keys_are_per_platform(clock):
    limits = ConversationLimits(user_limit=1, channel_limit=5, window_s=60, clock=clock)
    assert limits.check("slack", "1", "C1").allowed
    assert limits.check("discord", "1", "C1").allowed


def test_idle_keys_are_forgotten(clock):
    limiter = RateLimiter(1, 1, clock=clock)
    for i in range(1000):
        limiter.check(i)
    clock.advance(5)
    limiter.check("last")  # the 1000th-call sweep happens on the next thousand; force one
    limiter._sweep(clock())
    assert len(limiter._hits) <= 1


def test_invalid_limits():
    with pytest.raises(ValueError):
        RateLimiter(0, 60)
