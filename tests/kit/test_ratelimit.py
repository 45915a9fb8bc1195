"""kit.ratelimit on real Redis and in memory: limits, shared counts across limiter instances (= processes),
the capped back-off, no secrets in keys, and Redis going away at run time."""
from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from kit.clock import clock
from kit.ratelimit import ALLOWED, Backoff, RateLimiter, RetryAfter

REDIS_URL = os.environ.get("SHOPTALK_TEST_REDIS_URL")
STORES = ["memory"] + (["redis"] if REDIS_URL else [])


@pytest.fixture(params=STORES)
async def limiters(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RateLimiter, RateLimiter]]:
    """Two limiters as two processes would have them: the same Redis (with a random prefix), or memory each."""
    url = REDIS_URL if request.param == "redis" else None
    prefix = f"test:{uuid.uuid4().hex[:12]}"
    first, second = RateLimiter(url, prefix=prefix), RateLimiter(url, prefix=prefix)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_a_limit_refuses_over_it_with_retry_after_and_other_keys_go_on(
        limiters: tuple[RateLimiter, RateLimiter]) -> None:
    limiter, _ = limiters
    decisions = [await limiter.hit("3/minute", "chat", "shopper-1") for _ in range(4)]
    assert decisions[:3] == [ALLOWED] * 3
    refused = decisions[3]
    assert isinstance(refused, RetryAfter)
    assert 1 <= refused.seconds <= 60
    assert await limiter.hit("3/minute", "chat", "shopper-2") == ALLOWED
    assert await limiter.hit("3/minute", "other-scope", "shopper-1") == ALLOWED


async def test_every_part_of_a_compound_limit_applies(limiters: tuple[RateLimiter, RateLimiter]) -> None:
    limiter, _ = limiters
    decisions = [await limiter.hit("100/second;2/minute", "chat", "s") for _ in range(3)]
    assert decisions[:2] == [ALLOWED] * 2
    assert isinstance(decisions[2], RetryAfter)
    assert decisions[2].seconds > 1  # the minute's window, not the second's


async def test_peek_counts_nothing_and_reset_forgets(limiters: tuple[RateLimiter, RateLimiter]) -> None:
    limiter, _ = limiters
    for _ in range(5):
        assert await limiter.peek("2/minute", "sign-in", "a") == ALLOWED
    await limiter.hit("2/minute", "sign-in", "a")
    await limiter.hit("2/minute", "sign-in", "a")
    assert isinstance(await limiter.peek("2/minute", "sign-in", "a"), RetryAfter)
    await limiter.reset("2/minute", "sign-in", "a")
    assert await limiter.peek("2/minute", "sign-in", "a") == ALLOWED


@pytest.mark.skipif(REDIS_URL is None, reason="set SHOPTALK_TEST_REDIS_URL")
async def test_two_limiters_on_one_redis_share_counts() -> None:
    """The proof for `serve --workers N`: each worker process has its own limiter on the same Redis."""
    prefix = f"test:{uuid.uuid4().hex[:12]}"
    first, second = RateLimiter(REDIS_URL, prefix=prefix), RateLimiter(REDIS_URL, prefix=prefix)
    try:
        assert first.shared
        assert second.shared
        assert await first.hit("2/minute", "chat", "s") == ALLOWED
        assert await second.hit("2/minute", "chat", "s") == ALLOWED
        assert isinstance(await first.hit("2/minute", "chat", "s"), RetryAfter)
        assert isinstance(await second.hit("2/minute", "chat", "s"), RetryAfter)
        first_backoff, second_backoff = (Backoff(limiter, "login", free_failures=1) for limiter in (first, second))
        await first_backoff.failed("ana@shop.test")
        await second_backoff.failed("ana@shop.test")  # the second failure overall: a wait, seen by both
        assert isinstance(await first_backoff.check("ana@shop.test"), RetryAfter)
        assert isinstance(await second_backoff.check("ana@shop.test"), RetryAfter)
    finally:
        await first.close()
        await second.close()


@pytest.mark.skipif(REDIS_URL is None, reason="set SHOPTALK_TEST_REDIS_URL")
async def test_keys_are_namespaced_and_hold_no_email_in_clear() -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}"
    limiter = RateLimiter(REDIS_URL, prefix=prefix)
    backoff = Backoff(limiter, "agent.sign_in.email", free_failures=0)
    redis = aioredis.Redis.from_url(str(REDIS_URL))
    try:
        await limiter.hit("5/minute", "agent.sign_in.client", "203.0.113.9", "ana@shop.test")
        await backoff.failed("ana@shop.test")
        keys = [key.decode() async for key in redis.scan_iter(match=f"{prefix}*")]
        assert len(keys) == 3  # the window, the failure count, the time the wait ends
        assert not any("ana" in key or "shop.test" in key or "203.0.113" in key for key in keys)
    finally:
        await redis.aclose()
        await limiter.close()


async def test_backoff_doubles_is_capped_and_a_success_resets_it(
        limiters: tuple[RateLimiter, RateLimiter], monkeypatch: pytest.MonkeyPatch) -> None:
    limiter, _ = limiters
    backoff = Backoff(limiter, "login", free_failures=2, base_seconds=1, cap_seconds=60)
    now = clock.now()
    monkeypatch.setattr(clock, "now", lambda: now)
    waits = []
    for _ in range(12):
        assert await backoff.check("ana") == ALLOWED
        decision = await backoff.failed("ana")
        waits.append(decision.seconds if isinstance(decision, RetryAfter) else 0)
        blocked = await backoff.check("ana")
        assert blocked == (ALLOWED if waits[-1] == 0 else RetryAfter(waits[-1]))
        now += timedelta(seconds=waits[-1])  # the attacker waits exactly as long as told
    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert await backoff.check("bob") == ALLOWED  # another target is not affected
    await backoff.succeeded("ana")
    assert await backoff.failed("ana") == ALLOWED  # counting starts again


async def test_redis_gone_at_run_time_counts_in_memory_without_failing(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter("redis://127.0.0.1:9/0", prefix="test:gone")  # nothing listens on port 9
    try:
        with caplog.at_level(logging.WARNING, logger="kit.ratelimit"):
            assert await limiter.hit("1/minute", "chat", "s") == ALLOWED
        assert "Redis unreachable" in caplog.text
        assert not limiter.shared
        assert isinstance(await limiter.hit("1/minute", "chat", "s"), RetryAfter)  # still limited, per process
        assert await Backoff(limiter, "login").failed("ana") == ALLOWED
    finally:
        await limiter.close()
