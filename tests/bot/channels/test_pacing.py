"""Client-side pacing before Graph API: token buckets per number and per shopper, shared through Redis."""
from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from bot.channels.pacing import Bucket, PaceExceeded, Pacer
from bot.channels.whatsapp import WhatsAppChannel
from bot.messages import OutboundMessage
from kit.db import Database
from kit.outbox import DeliveryError, OutboxEvent
from kit.settings import WhatsAppSettings
from tests.bot.channels.graph_double import ACCESS_TOKEN, APP_SECRET, GraphDouble

REDIS_URL = os.environ.get("SHOPTALK_TEST_REDIS_URL")
BACKENDS = [None, pytest.param(REDIS_URL, id="redis", marks=pytest.mark.skipif(
    REDIS_URL is None, reason="set SHOPTALK_TEST_REDIS_URL"))]


@pytest.mark.parametrize("redis_url", BACKENDS)
async def test_buckets_let_their_burst_through_then_pace_and_pause(redis_url: str | None) -> None:
    pacer = Pacer(redis_url=redis_url, prefix=f"test:pace:{uuid.uuid4().hex}")
    other = Pacer(redis_url=redis_url, prefix=pacer.prefix) if redis_url else pacer  # another process
    number = ("number", ("1",), Bucket(rate=10.0, burst=2.0))
    started = time.monotonic()
    try:
        waits = [await (pacer if n % 2 else other).acquire([number], max_wait=60) for n in range(5)]
        assert waits[:2] == [0.0, 0.0]
        # Then one per tenth of a second, never faster (a lower bound only: a loaded machine is slower, not wrong).
        assert time.monotonic() - started >= 0.28
        # A bucket so slow that no delay of this machine refills it: refused beyond the longest wait, saying when.
        slow = ("number", ("slow",), Bucket(rate=0.01, burst=1.0))
        assert await pacer.acquire([slow], max_wait=0) == 0.0
        with pytest.raises(PaceExceeded) as refused:
            await other.acquire([slow], max_wait=0.01)
        assert 0 < refused.value.wait <= 100
        pair = ("pair", ("1", "shopper"), Bucket(rate=0.01, burst=1.0))
        await asyncio.sleep(0.3)  # the number refills to its burst of 2
        assert await pacer.acquire([pair, number], max_wait=60) == 0.0  # one from each, together
        with pytest.raises(PaceExceeded):  # the pair is empty: the number's token is not taken either
            await other.acquire([pair, number], max_wait=0.5)
        assert await pacer.acquire([number], max_wait=0) == 0.0  # its second token is still there
        other_number = ("number", ("2",), Bucket(rate=10.0, burst=2.0))
        await other.pause([other_number], 1.5)  # Graph said: wait
        started = time.monotonic()
        await pacer.acquire([other_number], max_wait=5)
        assert time.monotonic() - started >= 1.4
    finally:
        await pacer.close()
        if other is not pacer:
            await other.close()


def settings_for(graph: GraphDouble, **pace: float) -> WhatsAppSettings:
    return WhatsAppSettings(phone_number_id=graph.phone_number_id, access_token=ACCESS_TOKEN, app_secret=APP_SECRET,
                            api_base=graph.base_url, **pace)


def event_to(to: str, n: int) -> OutboxEvent:
    message = OutboundMessage(channel="whatsapp", recipient_id=to, text=f"message {n}")
    return OutboxEvent(topic="send.whatsapp", payload=message.model_dump(mode="json"), idempotency_key=f"m:{to}:{n}")


async def open_windows(db: Database, graph: GraphDouble, shoppers: list[str]) -> None:
    from bot.channels import repository
    from kit.clock import utcnow

    async with db.unit_of_work() as session:
        for shopper in shoppers:
            graph.last_inbound[shopper] = time.time()
            await repository.touch_contact(session, channel="whatsapp", sender_id=shopper, at=utcnow())


@pytest.mark.parametrize("redis_url", BACKENDS)
async def test_senders_stay_under_graphs_limits_so_graph_never_refuses(db: Database, graph: GraphDouble,
                                                                      redis_url: str | None) -> None:
    graph.throughput, graph.pair_rate = 10.0, (2.0, 2.0)  # Graph enforces both
    shoppers = [f"49151000{n:04d}" for n in range(20)]
    await open_windows(db, graph, shoppers)
    pace = {"messages_per_second": 10.0, "pair_messages_per_second": 2.0, "pair_burst": 2}
    # Two senders (two worker processes when Redis shares the buckets; one process's two slots without).
    first = WhatsAppChannel(settings=settings_for(graph, **pace), database=db, redis_url=redis_url)
    second = WhatsAppChannel(settings=settings_for(graph, **pace), database=db, redis_url=redis_url)
    if redis_url:
        prefix = f"test:pace:{uuid.uuid4().hex}"
        first.pacer.prefix = second.pacer.prefix = prefix
    else:
        second.pacer = first.pacer
    try:
        started = time.monotonic()
        jobs = [(first if n % 2 else second).send(event_to(to, n), progress={}) for n, to in enumerate(shoppers)]
        jobs += [first.send(event_to(shoppers[0], 100 + n), progress={}) for n in range(4)]  # one shopper, 4 more
        await asyncio.gather(*jobs)
        elapsed = time.monotonic() - started
    finally:
        await first.close()
        await second.close()
    assert [code for code, _ in graph.refused] == []  # not one 130429 or 131056
    assert len(graph.sent) == 24
    assert elapsed >= 1.2  # 24 messages at 10/s after a burst of 10


async def test_graphs_rate_limit_answer_pauses_the_number_for_every_sender(db: Database, graph: GraphDouble) -> None:
    await open_windows(db, graph, ["4915100000001", "4915100000002"])
    channel = WhatsAppChannel(settings=settings_for(graph), database=db)
    try:
        graph.fail_next(130429)
        with pytest.raises(DeliveryError) as refused:
            await channel.send(event_to("4915100000001", 1), progress={})
        assert refused.value.retry_after == 2.0
        started = time.monotonic()
        await channel.send(event_to("4915100000002", 2), progress={})  # another shopper: the number is paused
        assert time.monotonic() - started >= 1.8
        graph.fail_next(131056)
        with pytest.raises(DeliveryError):
            await channel.send(event_to("4915100000001", 3), progress={})
        with pytest.raises(DeliveryError) as later:  # this shopper's pair waits 6 s: the outbox gets it back
            await channel.send(event_to("4915100000001", 4), progress={})
        assert later.value.retry_after is not None
        assert later.value.retry_after > 5
    finally:
        await channel.close()
