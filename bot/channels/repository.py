"""Queries of the channel adapters."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.models import TelegramCallbackToken
from kit.clock import utcnow
from kit.outbox import DELIVERED, PENDING, OutboxEvent


async def callback_payload(session: AsyncSession, *, token: str) -> str | None:
    row = await session.get(TelegramCallbackToken, token)
    return None if row is None else row.payload


async def save_callback_token(session: AsyncSession, *, token: str, payload: str) -> None:
    if await session.get(TelegramCallbackToken, token) is not None:
        return
    try:
        async with session.begin_nested():
            session.add(TelegramCallbackToken(token=token, payload=payload, created_at=utcnow()))
    except IntegrityError:  # a concurrent sender stored the same token (same payload): fine
        pass


async def mark_replies_delivered(session: AsyncSession, *, idempotency_keys: Iterable[str]) -> int:
    """Synchronous channels (REST, a connected web chat) hand replies over in the response itself."""
    keys = list(idempotency_keys)
    if not keys:
        return 0
    result = await session.execute(
        update(OutboxEvent).where(OutboxEvent.idempotency_key.in_(keys), OutboxEvent.status == PENDING)
        .values(status=DELIVERED, delivered_at=utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

