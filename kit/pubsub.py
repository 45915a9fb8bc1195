"""Redis pub/sub shared by the processes of a shop: publish, and one subscription loop that survives Redis restarts."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

OnMessage = Callable[[str, str], Awaitable[None]]


class RedisPubSub:
    """One lazily connected Redis client (decoded strings) for `publish`, and `listen` for the subscriber side."""

    def __init__(self, url: str, *, name: str) -> None:
        self.url = url
        self.name = name  # names the subscriber in log lines
        self._redis: Any = None

    def connect(self) -> Any:
        """The client (redis.asyncio.Redis), made on first use."""
        if self._redis is None:
            import redis.asyncio as redis_asyncio

            self._redis = redis_asyncio.from_url(self.url, decode_responses=True)
        return self._redis

    async def publish(self, channel: str, message: str) -> None:
        await self.connect().publish(channel, message)

    async def listen(self, on_message: OnMessage, *, channels: Sequence[str] = (), patterns: Sequence[str] = (),
                     ready: asyncio.Event | None = None) -> None:
        """Subscribe to `channels` and `patterns` and await on_message(channel, data) for every message, until
        cancelled. A lost connection (or a failing on_message) is logged, and the subscription is made again a second
        later; `ready` is set once subscribed."""
        while True:
            pubsub = self.connect().pubsub()
            try:
                if channels:
                    await pubsub.subscribe(*channels)
                if patterns:
                    await pubsub.psubscribe(*patterns)
                if ready is not None:
                    ready.set()
                async for item in pubsub.listen():
                    if item.get("type") in ("message", "pmessage"):
                        await on_message(str(item["channel"]), item["data"])
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis restarting: subscribe again after a pause
                log.warning("%s: Redis subscription lost; reconnecting", self.name, exc_info=True)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
