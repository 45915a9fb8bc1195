"""Sales channels (web shop, chat channels, marketplaces)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.channels.models import SalesChannel
from commerce.orders.errors import ChannelNotFound
from kit.clock import utcnow
from kit.errors import InvalidInput

SYNC_MODES = ("push", "pull", "push_pull", "direct")


async def create_channel(session: AsyncSession, *, code: str, name: str, kind: str, sync_mode: str = "direct",
                         config: dict[str, Any] | None = None) -> SalesChannel:
    if sync_mode not in SYNC_MODES:
        raise InvalidInput(f"sync_mode must be one of {', '.join(SYNC_MODES)}.", code="invalid_sync_mode")
    channel = SalesChannel(code=code, name=name, kind=kind, sync_mode=sync_mode, config=config or {},
                           created_at=utcnow())
    session.add(channel)
    await session.flush()
    return channel


async def get_channel(session: AsyncSession, *, code: str) -> SalesChannel:
    channel = await session.scalar(select(SalesChannel).where(SalesChannel.code == code))
    if channel is None:
        raise ChannelNotFound(f"No sales channel {code!r}.")
    return channel


async def list_channels(session: AsyncSession) -> list[SalesChannel]:
    return list((await session.scalars(select(SalesChannel).order_by(SalesChannel.id))).all())
