from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import JSON, Index, Integer, String, Table, Text, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, aliased, mapped_column

from kit.clock import utcnow
from kit.db import Base, UTCDateTime, unit_of_work

log = logging.getLogger(__name__)

PENDING = "pending"
DELIVERING = "delivering"
DELIVERED = "delivered"
DEAD = "dead"
SUPERSEDED = "superseded"


class OutboxEvent(Base):
    """A side effect written in the same transaction as the change that causes it."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_coalesce", "topic", "coalesce_key", "status"),
        Index("ix_outbox_order", "order_key", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    coalesce_key: Mapped[str | None] = mapped_column(String(200), default=None)
    # Events with one order key are delivered one after the other, in id order (one conversation's messages).
    order_key: Mapped[str | None] = mapped_column(String(240), default=None)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


def order_key_of(topic: str, payload: dict[str, Any]) -> str | None:
    """The default order key: a message to one recipient (`payload["recipient_id"]`) on one topic never overtakes
    an earlier one to the same recipient."""
    recipient = payload.get("recipient_id")
    return f"{topic}:{recipient}"[:240] if isinstance(recipient, str | int) and recipient != "" else None


async def enqueue(session: AsyncSession, *, topic: str, payload: dict[str, Any], idempotency_key: str,
                  coalesce_key: str | None = None, max_attempts: int = 8,
                  delay_seconds: float = 0.0, delivered: bool = False, flush: bool = True,
                  order_key: str | None = None) -> OutboxEvent:
    """Add a side effect to the caller's transaction; delivered after commit by a worker.

    `delivered`: the caller hands it over itself in this same request (a synchronous channel); the event is
    kept as the record of what was sent, already delivered. `flush=False` leaves the INSERT to the caller's
    next flush (several events then go in one round trip). `order_key`: default `order_key_of`."""
    now = utcnow()
    event = OutboxEvent(topic=topic, payload=payload, idempotency_key=idempotency_key,
                        coalesce_key=coalesce_key, order_key=order_key or order_key_of(topic, payload),
                        status=DELIVERED if delivered else PENDING, attempts=0,
                        max_attempts=max_attempts, next_attempt_at=now + timedelta(seconds=delay_seconds),
                        created_at=now, delivered_at=now if delivered else None)
    session.add(event)
    if flush:
        await session.flush()
    return event


@dataclass(frozen=True)
class NewEvent:
    """One side effect for `enqueue_many`."""

    topic: str
    payload: dict[str, Any]
    idempotency_key: str
    coalesce_key: str | None = None
    max_attempts: int = 8


_INSERT_EVENTS = insert(cast(Table, OutboxEvent.__table__))


async def enqueue_many(session: AsyncSession, events: list[NewEvent], *, delivered: bool = False) -> None:
    """Add several side effects to the caller's transaction in one statement (Core: no ORM objects).

    Same rules as `enqueue`, due at once; `delivered` as there."""
    if not events:
        return
    now = utcnow()
    rows = [{"topic": e.topic, "payload": e.payload, "idempotency_key": e.idempotency_key,
             "coalesce_key": e.coalesce_key, "order_key": order_key_of(e.topic, e.payload),
             "status": DELIVERED if delivered else PENDING, "attempts": 0,
             "max_attempts": e.max_attempts, "next_attempt_at": now, "locked_until": None, "last_error": None,
             "created_at": now, "delivered_at": now if delivered else None} for e in events]
    await session.execute(_INSERT_EVENTS, rows)


Handler = Callable[[OutboxEvent], Awaitable[None]]


class DeliveryError(Exception):
    """A handler's retryable failure; `retry_after` overrides the backoff when the peer asked for it."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


def backoff_seconds(attempts: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    return float(min(cap, base * (2 ** max(0, attempts - 1))) * (0.8 + 0.4 * random.random()))


@dataclass
class ClaimedEvent:
    id: int
    topic: str
    coalesce_key: str | None
    order_key: str | None = None

    @property
    def lane(self) -> str:
        """Events in one lane are delivered one after the other; lanes run concurrently."""
        if self.order_key is not None:
            return "o:" + self.order_key
        if self.coalesce_key is not None:
            return f"c:{self.topic}:{self.coalesce_key}"
        return f"i:{self.id}"


_EARLIER = aliased(OutboxEvent)


class OutboxWorker:
    """Delivers due outbox events, up to `concurrency` at once. Several workers share the table safely.

    A claim marks rows `delivering` with a lease (`locked_until`); a worker killed mid-delivery leaves
    its lease to expire and the row is claimed again, so nothing is lost. On PostgreSQL claims use
    FOR UPDATE SKIP LOCKED; on SQLite the write lock taken at BEGIN serialises them.
    Order: an event is only claimed when no earlier event of its order key is pending or delivering (so one
    conversation's messages go one by one, in order, also across workers and retries); events of one coalesce
    key in a claim are delivered one after the other.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], handlers: dict[str, Handler], *,
                 batch_size: int = 50, lease_seconds: float = 60.0, worker_id: str = "worker",
                 concurrency: int = 8) -> None:
        self.sessions = sessions
        self.handlers = handlers
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.worker_id = worker_id
        self.concurrency = max(1, concurrency)

    async def claim(self) -> list[ClaimedEvent]:
        now = utcnow()
        async with unit_of_work(self.sessions) as session:
            due = or_(
                (OutboxEvent.status == PENDING) & (OutboxEvent.next_attempt_at <= now),
                (OutboxEvent.status == DELIVERING) & (OutboxEvent.locked_until <= now),
            )
            waits = (select(_EARLIER.id).where(_EARLIER.order_key == OutboxEvent.order_key,
                                               _EARLIER.id < OutboxEvent.id,
                                               _EARLIER.status.in_([PENDING, DELIVERING])).exists())
            in_turn = or_(OutboxEvent.order_key.is_(None), ~waits)
            query = (select(OutboxEvent).where(due, in_turn, OutboxEvent.topic.in_(list(self.handlers)))
                     .order_by(OutboxEvent.id).limit(self.batch_size))
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list((await session.scalars(query)).all())
            lease = now + timedelta(seconds=self.lease_seconds)
            for row in rows:
                row.status = DELIVERING
                row.locked_until = lease
            return [ClaimedEvent(r.id, r.topic, r.coalesce_key, r.order_key) for r in rows]

    async def deliver(self, claimed: ClaimedEvent) -> None:
        # Three short transactions: the peer is called with no database lock held.
        async with unit_of_work(self.sessions) as session:
            event = await session.get(OutboxEvent, claimed.id)
            if event is None or event.status != DELIVERING:
                return
            if event.coalesce_key is not None:
                newer = await session.scalar(
                    select(OutboxEvent.id).where(
                        OutboxEvent.topic == event.topic, OutboxEvent.coalesce_key == event.coalesce_key,
                        OutboxEvent.id > event.id,
                        OutboxEvent.status.in_([PENDING, DELIVERING])).limit(1))
                if newer is not None:
                    # A newer value for the same key will be delivered; this one is stale.
                    event.status = SUPERSEDED
                    event.delivered_at = utcnow()
                    return
            event.attempts += 1
            attempts = event.attempts
        error: Exception | None = None
        try:
            await self.handlers[event.topic](event)
        except Exception as exc:  # every handler failure is recorded, none is lost
            error = exc
        async with unit_of_work(self.sessions) as session:
            row = await session.get(OutboxEvent, claimed.id)
            if row is None or row.status != DELIVERING:
                return
            row.locked_until = None
            if error is None:
                row.status = DELIVERED
                row.delivered_at = utcnow()
                row.last_error = None
                return
            row.last_error = f"{type(error).__name__}: {error}"[:2000]
            permanent = isinstance(error, DeliveryError) and error.permanent
            if permanent or attempts >= row.max_attempts:
                row.status = DEAD
                log.warning("outbox event %s (%s) dead-lettered: %s", row.id, row.topic, error)
                return
            retry_after = error.retry_after if isinstance(error, DeliveryError) else None
            delay = retry_after if retry_after is not None else backoff_seconds(attempts)
            row.status = PENDING
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)

    async def run_once(self) -> int:
        claimed = await self.claim()
        lanes: dict[str, list[ClaimedEvent]] = {}
        for item in claimed:
            lanes.setdefault(item.lane, []).append(item)
        slots = asyncio.Semaphore(self.concurrency)

        async def deliver_lane(items: list[ClaimedEvent]) -> None:
            async with slots:
                for item in items:
                    try:
                        await self.deliver(item)
                    except Exception:  # a database hiccup: the lease expires and the event is claimed again
                        log.exception("outbox worker %s: delivering event %s failed", self.worker_id, item.id)

        await asyncio.gather(*(deliver_lane(items) for items in lanes.values()))
        return len(claimed)

    async def run_forever(self, *, idle_sleep: float = 0.2, stop: asyncio.Event | None = None) -> None:
        while stop is None or not stop.is_set():
            try:
                done = await self.run_once()
            except Exception:  # the loop must survive a database hiccup
                log.exception("outbox worker %s: claim failed", self.worker_id)
                done = 0
            if done == 0:
                await asyncio.sleep(idle_sleep)


async def retry_dead(session: AsyncSession, event_ids: list[int]) -> int:
    """Send dead-lettered events again (the merchant's retry button)."""
    result = await session.execute(
        update(OutboxEvent).where(OutboxEvent.id.in_(event_ids), OutboxEvent.status == DEAD)
        .values(status=PENDING, attempts=0, next_attempt_at=utcnow(), last_error=None))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
