from __future__ import annotations

from kit.db import Database
from kit.outbox import (
    DEAD,
    DELIVERED,
    SUPERSEDED,
    DeliveryError,
    NewEvent,
    OutboxEvent,
    OutboxWorker,
    enqueue,
    enqueue_many,
)


async def test_delivered_once_and_coalesced(db: Database) -> None:
    delivered: list[dict[str, object]] = []

    async def handler(event: OutboxEvent) -> None:
        delivered.append(event.payload)

    async with db.unit_of_work() as session:
        for qty in (5, 4, 3):
            await enqueue(session, topic="stock.push", payload={"sku": "A", "qty": qty},
                          idempotency_key=f"A-{qty}", coalesce_key="A")
        await enqueue(session, topic="stock.push", payload={"sku": "B", "qty": 1}, idempotency_key="B-1",
                      coalesce_key="B")
    worker = OutboxWorker(db.sessions, {"stock.push": handler})
    assert await worker.run_once() == 4
    assert await worker.run_once() == 0
    # Different keys go concurrently: compared without their order.
    assert sorted(delivered, key=str) == [{"sku": "A", "qty": 3}, {"sku": "B", "qty": 1}]
    async with db.sessions() as session:
        rows = (await session.execute(OutboxEvent.__table__.select())).all()
        statuses = {r.idempotency_key: r.status for r in rows}
    assert statuses == {"A-5": SUPERSEDED, "A-4": SUPERSEDED, "A-3": DELIVERED, "B-1": DELIVERED}


async def test_failures_retry_then_dead_letter(db: Database) -> None:
    calls = 0

    async def failing(event: OutboxEvent) -> None:
        nonlocal calls
        calls += 1
        raise DeliveryError("peer down", retry_after=0)

    async with db.unit_of_work() as session:
        await enqueue(session, topic="t", payload={}, idempotency_key="k", max_attempts=3)
    worker = OutboxWorker(db.sessions, {"t": failing})
    for _ in range(5):
        await worker.run_once()
    async with db.sessions() as session:
        row = (await session.execute(OutboxEvent.__table__.select())).one()
    assert calls == 3
    assert row.status == DEAD
    assert "peer down" in row.last_error


def test_bot_tokens_are_redacted_also_inside_bot_api_urls() -> None:
    from kit.logging import redact

    token = "123456789:AAE" + "x" * 32
    assert token not in redact(f"POST https://api.telegram.org/bot{token}/sendMessage failed")
    assert token not in redact(f"token={token}")
    assert redact("order 20231234:ok") == "order 20231234:ok"  # not a token: nothing hidden


async def test_enqueue_many_writes_every_event_in_one_go_and_delivered_ones_are_not_sent(db: Database) -> None:
    delivered: list[dict[str, object]] = []

    async def handler(event: OutboxEvent) -> None:
        delivered.append(event.payload)

    async with db.unit_of_work() as session:
        await enqueue_many(session, [NewEvent(topic="send.rest", payload={"n": n}, idempotency_key=f"msg:{n}")
                                     for n in (1, 2)], delivered=True)
        await enqueue_many(session, [NewEvent(topic="send.telegram", payload={"n": n}, idempotency_key=f"msg:{n}")
                                     for n in (3, 4)])
        await enqueue_many(session, [])
    worker = OutboxWorker(db.sessions, {"send.rest": handler, "send.telegram": handler})
    assert await worker.run_once() == 2
    assert sorted(delivered, key=str) == [{"n": 3}, {"n": 4}]
    async with db.sessions() as session:
        rows = (await session.execute(OutboxEvent.__table__.select().order_by(OutboxEvent.id))).all()
    assert [(r.idempotency_key, r.status) for r in rows] == [("msg:1", DELIVERED), ("msg:2", DELIVERED),
                                                            ("msg:3", DELIVERED), ("msg:4", DELIVERED)]
    assert all(r.delivered_at is not None and r.attempts == (0 if r.topic == "send.rest" else 1) for r in rows)


async def test_due_events_are_delivered_concurrently_up_to_the_bound(db: Database) -> None:
    import asyncio

    running = 0
    peak = 0
    full = asyncio.Event()  # four in flight at once: held until then, so no load can make them run one by one

    async def slow(event: OutboxEvent) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 4:
            full.set()
        try:
            try:  # a generous deadline only so that a worker never reaching four fails (peak < 4), not hangs
                await asyncio.wait_for(full.wait(), timeout=60)
            except TimeoutError:
                full.set()
            await asyncio.sleep(0)  # let any fifth start before these finish, were the bound not kept
        finally:
            running -= 1

    async with db.unit_of_work() as session:
        await enqueue_many(session, [NewEvent(topic="send.whatsapp", payload={"recipient_id": f"49{n}"},
                                              idempotency_key=f"msg:{n}") for n in range(12)])
    worker = OutboxWorker(db.sessions, {"send.whatsapp": slow}, concurrency=4)
    assert await worker.run_once() == 12
    assert peak == 4  # twelve shoppers, four at a time: never one by one, never more than the bound
    async with db.sessions() as session:
        statuses = {r.status for r in (await session.execute(OutboxEvent.__table__.select())).all()}
    assert statuses == {DELIVERED}


async def test_one_recipients_messages_never_overtake_each_other_even_when_one_is_retried(db: Database) -> None:
    import asyncio
    import random

    delivered: list[tuple[str, int]] = []
    failed_once: set[int] = set()
    overlap = 0
    running: set[str] = set()

    async def handler(event: OutboxEvent) -> None:
        nonlocal overlap
        who, n = str(event.payload["recipient_id"]), int(event.payload["n"])
        assert who not in running, "two messages of one recipient were in flight at once"
        running.add(who)
        if running - {who}:
            overlap += 1
        try:
            await asyncio.sleep(random.uniform(0.0, 0.02))
            if n == 2 and n not in failed_once:  # the second message fails once: the third must wait for it
                failed_once.add(n)
                raise DeliveryError("rate limited", retry_after=0)
            delivered.append((who, n))
        finally:
            running.discard(who)

    async with db.unit_of_work() as session:
        for n in range(1, 6):
            for who in ("alice", "bob"):
                await enqueue(session, topic="send.wechat", payload={"recipient_id": who, "n": n},
                              idempotency_key=f"{who}:{n}")
    worker = OutboxWorker(db.sessions, {"send.wechat": handler}, concurrency=8)
    for _ in range(20):
        if len(delivered) == 10:
            break
        await worker.run_once()
    assert [n for who, n in delivered if who == "alice"] == [1, 2, 3, 4, 5]
    assert [n for who, n in delivered if who == "bob"] == [1, 2, 3, 4, 5]
    assert overlap > 0  # the two shoppers were served side by side
