"""Rate limits and back-off over the `limits` package, shared through Redis when `redis.url` is set.

Without Redis the counts live in this process's memory: right only where one process serves (`--workers 1`).
With Redis every process (and every API instance on it) shares the counts. If Redis cannot be reached at run
time the limiter counts in memory for a while (warning logged) rather than refusing everybody or failing with 500.
Keys are `<prefix>:...<scope>/<sha256 of the key parts>`: an e-mail, sender or IP is never stored in clear.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from kit.clock import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_PREFIX = "shoptalk:rl"


@dataclass(frozen=True)
class Allowed:
    pass


@dataclass(frozen=True)
class RetryAfter:
    """Refused: the caller may try again after `seconds` (whole seconds, at least 1: a Retry-After value)."""

    seconds: int


Decision = Allowed | RetryAfter
ALLOWED = Allowed()


def digest(*parts: str) -> str:
    """A stable key for values that must not be stored in clear (e-mails, senders, IPs, token ids)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


@lru_cache(maxsize=64)
def parse_limits(limit: str) -> tuple[RateLimitItem, ...]:
    """'20/second;600/minute' -> the limits package's items (every one of them must allow a hit)."""
    items = tuple(parse_many(limit))
    if not items:
        raise ValueError(f"no rate limit in {limit!r}")
    return items


class RateLimiter:
    """Moving-window limits (`hit`) plus the storage the back-off helper keeps its counts in.

    One per process (or per app); `close()` releases the Redis connections."""

    def __init__(self, redis_url: str | None = None, *, prefix: str = DEFAULT_PREFIX,
                 redis_retry_seconds: float = 30.0, redis_timeout_seconds: float = 0.5) -> None:
        self.prefix = prefix
        self.redis_retry_seconds = redis_retry_seconds
        self._memory: Storage = MemoryStorage()
        self._redis: Storage | None = None
        if redis_url:
            # redis-py's asyncio client (installed); the limits default, coredis, is not.
            self._redis = RedisStorage("async+" + redis_url.removeprefix("async+"), wrap_exceptions=True,
                                       implementation="redispy", key_prefix=prefix,
                                       socket_connect_timeout=redis_timeout_seconds,
                                       socket_timeout=redis_timeout_seconds)
        self._redis_down_until = 0.0
        self._windows: dict[int, MovingWindowRateLimiter] = {}

    @property
    def shared(self) -> bool:
        """True when the counts are in Redis (shared by every process) right now."""
        return self._redis is not None and time.monotonic() >= self._redis_down_until

    async def _run(self, operation: Callable[[Storage], Awaitable[T]]) -> T:
        if not self.shared:
            return await operation(self._memory)
        assert self._redis is not None
        try:
            return await operation(self._redis)
        except (StorageError, OSError) as error:
            # Better a per-process limit for a while than every request refused or a 500.
            self._redis_down_until = time.monotonic() + self.redis_retry_seconds
            log.warning("rate limits: Redis unreachable (%s); counting in this process's memory for %.0f s",
                        error, self.redis_retry_seconds)
            return await operation(self._memory)

    def _window(self, storage: Storage) -> MovingWindowRateLimiter:
        window = self._windows.get(id(storage))
        if window is None:
            window = self._windows[id(storage)] = MovingWindowRateLimiter(storage)
        return window

    def _identifiers(self, scope: str, keys: tuple[str, ...]) -> tuple[str, str]:
        return (f"{self.prefix}/{scope}", digest(*keys))

    async def hit(self, limit: str, scope: str, *keys: str) -> Decision:
        """Count one event for `keys` in `scope` against every limit in `limit` ('5/second;100/minute').

        Refused -> RetryAfter (a refused event is not counted); the limits before the refusing one were hit."""
        identifiers = self._identifiers(scope, keys)
        for item in parse_limits(limit):
            async def acquire(storage: Storage, item: RateLimitItem = item) -> Decision:
                window = self._window(storage)
                if await window.hit(item, *identifiers):
                    return ALLOWED
                reset, _ = await window.get_window_stats(item, *identifiers)
                return RetryAfter(max(1, math.ceil(reset - time.time())))

            decision = await self._run(acquire)
            if isinstance(decision, RetryAfter):
                return decision
        return ALLOWED

    async def peek(self, limit: str, scope: str, *keys: str) -> Decision:
        """Would one more event be allowed? Counts nothing (for limits on failures, counted by `hit` after)."""
        identifiers = self._identifiers(scope, keys)
        for item in parse_limits(limit):
            async def look(storage: Storage, item: RateLimitItem = item) -> Decision:
                window = self._window(storage)
                if await window.test(item, *identifiers):
                    return ALLOWED
                reset, _ = await window.get_window_stats(item, *identifiers)
                return RetryAfter(max(1, math.ceil(reset - time.time())))

            decision = await self._run(look)
            if isinstance(decision, RetryAfter):
                return decision
        return ALLOWED

    async def reset(self, limit: str, scope: str, *keys: str) -> None:
        """Forget the events counted for `keys` in `scope` (a successful sign-in clears its failures)."""
        identifiers = self._identifiers(scope, keys)
        for item in parse_limits(limit):
            async def clear(storage: Storage, item: RateLimitItem = item) -> None:
                await self._window(storage).clear(item, *identifiers)

            await self._run(clear)

    async def close(self) -> None:
        if self._redis is not None:
            client = getattr(getattr(self._redis, "bridge", None), "storage", None)
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()


class Backoff:
    """Exponential back-off per target: after `free_failures` failures in `window_seconds`, each failure
    makes the target wait base * 2^(n - free_failures - 1) seconds, at most `cap_seconds`; a success resets it.

    The cap is what keeps an owner from being locked out: an attacker can delay them by at most `cap_seconds`.
    Waits are measured with `kit.clock` (tests move it); the counts live in the limiter's store."""

    def __init__(self, limiter: RateLimiter, scope: str, *, free_failures: int = 5, base_seconds: float = 1.0,
                 cap_seconds: float = 60.0, window_seconds: float = 900.0) -> None:
        self.limiter = limiter
        self.scope = scope
        self.free_failures = free_failures
        self.base_seconds = base_seconds
        self.cap_seconds = cap_seconds
        self.window_seconds = window_seconds

    def _keys(self, keys: tuple[str, ...]) -> tuple[str, str]:
        base = f"backoff/{self.limiter.prefix}/{self.scope}/{digest(*keys)}"
        return f"{base}/failures", f"{base}/not-before-ms"

    def wait_after(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure in the window (0 while failures are free)."""
        over = failures - self.free_failures
        if over <= 0:
            return 0.0
        return float(min(self.cap_seconds, self.base_seconds * 2 ** min(over - 1, 62)))

    async def check(self, *keys: str) -> Decision:
        """Refused while the target waits; counts nothing."""
        _, not_before_key = self._keys(keys)
        not_before_ms = await self.limiter._run(lambda storage: storage.get(not_before_key))
        remaining = (not_before_ms - _now_ms()) / 1000
        if remaining <= 0:
            return ALLOWED
        return RetryAfter(max(1, math.ceil(min(remaining, self.cap_seconds))))

    async def failed(self, *keys: str) -> Decision:
        """Count a failure; returns the wait it imposes on the target (Allowed while failures are free)."""
        failures_key, not_before_key = self._keys(keys)
        window = math.ceil(self.window_seconds)
        failures = await self.limiter._run(lambda storage: storage.incr(failures_key, window))
        wait = self.wait_after(failures)
        if wait <= 0:
            return ALLOWED
        not_before_ms = _now_ms() + int(wait * 1000)

        async def block(storage: Storage) -> None:
            # A counter holds the time: cleared, then set; the key expires with the wait, so a race between two
            # failures can at worst lengthen one wait to `wait + 1` s.
            await storage.clear(not_before_key)
            await storage.incr(not_before_key, math.ceil(wait) + 1, amount=not_before_ms)

        await self.limiter._run(block)
        return RetryAfter(max(1, math.ceil(wait)))

    async def succeeded(self, *keys: str) -> None:
        failures_key, not_before_key = self._keys(keys)

        async def forget(storage: Storage) -> None:
            await storage.clear(failures_key)
            await storage.clear(not_before_key)

        await self.limiter._run(forget)


def _now_ms() -> int:
    return int(utcnow().timestamp() * 1000)
