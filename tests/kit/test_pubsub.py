"""kit.pubsub on a real Redis (SHOPTALK_TEST_REDIS_URL): channels, patterns, and a subscription made again."""
from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable

import pytest

from kit.pubsub import RedisPubSub

REDIS_URL = os.environ.get("SHOPTALK_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(REDIS_URL is None, reason="set SHOPTALK_TEST_REDIS_URL")


async def _listening(pubsub: RedisPubSub, got: asyncio.Queue[tuple[str, str]],
                     **subscribe: list[str]) -> asyncio.Task[None]:
    async def on_message(channel: str, data: str) -> None:
        await got.put((channel, data))

    ready = asyncio.Event()
    task = asyncio.create_task(pubsub.listen(on_message, ready=ready, **subscribe))
    await asyncio.wait_for(ready.wait(), timeout=30)
    return task


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1200):  # a 60 s deadline for a failing run; a passing one returns as soon as it holds
        if condition():
            return
        await asyncio.sleep(0.05)


async def test_messages_on_a_channel_and_a_pattern_reach_the_listener() -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    publisher, subscriber = RedisPubSub(str(REDIS_URL), name="test"), RedisPubSub(str(REDIS_URL), name="test")
    got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    task = await _listening(subscriber, got, channels=[prefix + "exact"], patterns=[prefix + "p:*"])
    try:
        await publisher.publish(prefix + "exact", "one")
        await publisher.publish(prefix + "p:session-7", "two")
        await publisher.publish(prefix + "elsewhere", "never")
        assert await asyncio.wait_for(got.get(), timeout=30) == (prefix + "exact", "one")
        assert await asyncio.wait_for(got.get(), timeout=30) == (prefix + "p:session-7", "two")
        await asyncio.sleep(0.2)
        assert got.empty()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await publisher.close()
        await subscriber.close()


async def test_a_failure_while_listening_is_logged_and_the_subscription_is_made_again(
        caplog: pytest.LogCaptureFixture) -> None:
    channel = f"test:{uuid.uuid4().hex}"
    pubsub = RedisPubSub(str(REDIS_URL), name="flaky listener")
    seen: list[str] = []
    subscribed = asyncio.Event()

    async def on_message(_: str, data: str) -> None:
        seen.append(data)
        if data == "breaks":
            subscribed.clear()
            raise RuntimeError("handler failed")

    task = asyncio.create_task(pubsub.listen(on_message, channels=[channel], ready=subscribed))
    try:
        await asyncio.wait_for(subscribed.wait(), timeout=30)
        await pubsub.publish(channel, "breaks")
        await _until(lambda: seen == ["breaks"])  # the handler has failed (and cleared `subscribed`)
        await asyncio.wait_for(subscribed.wait(), timeout=30)  # set again by the new subscription, a second later
        await pubsub.publish(channel, "after")
        await _until(lambda: "after" in seen)
        assert seen == ["breaks", "after"]
        assert "flaky listener: Redis subscription lost; reconnecting" in caplog.text
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pubsub.close()
