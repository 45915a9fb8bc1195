"""Queries of the channel adapters."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.models import TelegramCallbackToken
from kit.clock import utcnow


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
