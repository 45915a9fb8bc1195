"""Client-side pacing before a platform's send API: token buckets per sending number and per (number, recipient).

WhatsApp's Cloud API limits each business number's throughput (error 130429) and the messages to one shopper
(the pair rate limit, 131056), and the account (80007). Sending at the rate Graph allows avoids those errors
instead of provoking and retrying them; when Graph still answers one, the bucket it names is paused for the
time Graph asked (`pause`), so every sender backs off, not only the one that was refused.

A bucket holds up to `burst` tokens and refills at `rate` per second. `acquire` takes one token from each of
its buckets at once (all or nothing, so a token is never held while waiting for another and the request leaves
right after), sleeping until they are there; a wait longer than `max_wait` raises PaceExceeded and the caller
gives the event back to the outbox with that delay (no outbox slot sleeps for minutes). The buckets live
in Redis when `redis_url` is set (one Lua script, atomic, with Redis's clock: every process shares them), else
in this process; Redis unreachable falls back to memory for a while (logged) rather than stopping sends.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from kit.pubsub import RedisPubSub
from kit.ratelimit import digest

log = logging.getLogger(__name__)

# KEYS: the buckets; ARGV: pause (seconds; > 0: pause them instead of taking), ttl ms, then rate, burst per key.
# State per bucket: tokens at `ts`; a pause moves `ts` into the future with no tokens (a debt refilled from then).
# A take is all or nothing: one token from every bucket when each has one now, else the longest wait.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local pause = tonumber(ARGV[1])
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  if pause > 0 then
    if now + pause > ts then redis.call('HSET', key, 'tokens', math.min(tokens, 0), 'ts', now + pause) end
    redis.call('PEXPIRE', key, ARGV[2])
  else
    tokens = math.min(burst, tokens + (now - ts) * rate)
    if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
    levels[i] = tokens
  end
end
if pause > 0 or wait > 0 then return {0, tostring(wait)} end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', levels[i] - 1, 'ts', now)
  redis.call('PEXPIRE', key, ARGV[2])
end
return {1, '0'}
"""


@dataclass(frozen=True)
class Bucket:
    rate: float  # tokens per second
    burst: float  # most tokens held


class PaceExceeded(Exception):
    """No token within the caller's longest wait; `wait`: when one would be there."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"no capacity for {wait:.1f} s")
        self.wait = wait


Entry = tuple[str, tuple[str, ...], Bucket]  # scope, key parts, bucket


class Pacer:
    """Token buckets shared through Redis (when configured) or kept in this process."""

    def __init__(self, *, redis_url: str | None = None, prefix: str = "shoptalk:pace",
                 redis_retry_seconds: float = 30.0) -> None:
        self.prefix = prefix
        self._redis = RedisPubSub(redis_url, name="send pacing") if redis_url else None
        self._script: Any = None
        self._memory: dict[str, tuple[float, float]] = {}  # key -> (tokens, ts) on time.monotonic()
        self._redis_down_until = 0.0
        self.redis_retry_seconds = redis_retry_seconds

    @property
    def shared(self) -> bool:
        return self._redis is not None and time.monotonic() >= self._redis_down_until

    def _key(self, scope: str, parts: tuple[str, ...]) -> str:
        return f"{self.prefix}:{scope}:{digest(*parts)}"

    async def _redis_call(self, entries: list[Entry], pause: float) -> float | None:
        assert self._redis is not None
        try:
            client = self._redis.connect()
            if self._script is None:
                self._script = client.register_script(_SCRIPT)
            longest = max(b.burst / b.rate for _, _, b in entries)
            args: list[float | int] = [pause, int((longest + pause + 60.0) * 1000)]
            for _, _, bucket in entries:
                args += [bucket.rate, bucket.burst]
            taken, wait = await self._script(keys=[self._key(s, p) for s, p, _ in entries], args=args)
            return -1.0 if int(taken) else float(wait)
        except Exception as error:  # noqa: BLE001 - redis-py's connection and timeout errors
            self._redis_down_until = time.monotonic() + self.redis_retry_seconds
            log.warning("send pacing: Redis unreachable (%s); pacing in this process for %.0f s", error,
                        self.redis_retry_seconds)
            return None

    def _memory_call(self, entries: list[Entry], pause: float) -> float:
        now = time.monotonic()
        levels: list[tuple[str, float]] = []
        wait = 0.0
        for scope, parts, bucket in entries:
            key = self._key(scope, parts)
            tokens, ts = self._memory.get(key, (bucket.burst, now))
            if pause > 0:
                if now + pause > ts:
                    self._memory[key] = (min(tokens, 0.0), now + pause)
                continue
            tokens = min(bucket.burst, tokens + (now - ts) * bucket.rate)
            if tokens < 1:
                wait = max(wait, (1 - tokens) / bucket.rate)
            levels.append((key, tokens))
        if pause > 0 or wait > 0:
            return wait
        for key, tokens in levels:
            self._memory[key] = (tokens - 1, now)
        return -1.0

    async def _call(self, entries: list[Entry], pause: float = 0.0) -> float:
        """-1 when one token of every bucket was taken; else the seconds until each has one."""
        if self.shared:
            result = await self._redis_call(entries, pause)
            if result is not None:
                return result
        return self._memory_call(entries, pause)

    async def acquire(self, entries: list[Entry], *, max_wait: float) -> float:
        """One token from each bucket, waiting for them (the seconds waited); PaceExceeded when that would take
        over `max_wait` in all."""
        waited = 0.0
        while True:
            wait = await self._call(entries)
            if wait < 0:
                return waited
            if waited + wait > max_wait:
                raise PaceExceeded(waited + wait)
            await asyncio.sleep(wait)
            waited += wait

    async def pause(self, entries: list[Entry], seconds: float) -> None:
        """No tokens from these buckets for `seconds` (the platform said so)."""
        await self._call(entries, pause=max(0.001, seconds))

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.close()
