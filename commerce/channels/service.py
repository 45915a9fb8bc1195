"""Sales channels (web shop, chat channels, marketplaces): settings, allocation, what each channel is shown."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commerce.channels.allocation import ALLOCATIONS, channel_quantity
from commerce.channels.connectors import validate_config
from commerce.channels.errors import InvalidChannelConfig
from commerce.channels.models import SalesChannel
from commerce.channels.repository import ChannelRepository
from commerce.channels.schemas import SECRET_KEYS
from commerce.inventory.service import available_stock
from commerce.orders.errors import ChannelNotFound
from kit.clock import utcnow
from kit.errors import Conflict, InvalidInput

SYNC_MODES = ("push", "pull", "push_pull", "direct")
CONNECTOR_NAMES = ("none", "webhook", "shopify")


def _check_allocation(allocation: str, allocation_value: int, safety_stock: int) -> None:
    if allocation not in ALLOCATIONS:
        raise InvalidChannelConfig(f"allocation must be one of {', '.join(ALLOCATIONS)}.", code="invalid_allocation")
    if allocation_value < 0 or safety_stock < 0:
        raise InvalidChannelConfig("Allocation and safety stock cannot be negative.", code="invalid_allocation")
    if allocation == "share" and allocation_value > 100:
        raise InvalidChannelConfig("A share is a percentage from 0 to 100.", code="invalid_allocation")


async def create_channel(session: AsyncSession, *, code: str, name: str, kind: str, sync_mode: str = "direct",
                         config: dict[str, Any] | None = None, connector: str = "none",
                         allocation: str = "shared", allocation_value: int = 0,
                         safety_stock: int = 0) -> SalesChannel:
    """Add a sales channel; a connector's config must be complete. Without one, nothing is pushed or pulled."""
    if sync_mode not in SYNC_MODES:
        raise InvalidInput(f"sync_mode must be one of {', '.join(SYNC_MODES)}.", code="invalid_sync_mode")
    if connector not in CONNECTOR_NAMES:
        raise InvalidChannelConfig(f"connector must be one of {', '.join(CONNECTOR_NAMES)}.",
                                   code="invalid_connector")
    _check_allocation(allocation, allocation_value, safety_stock)
    repo = ChannelRepository(session)
    if await repo.by_code(code) is not None:
        raise Conflict(f"A sales channel {code!r} already exists.", code="channel_exists")
    channel = SalesChannel(code=code, name=name, kind=kind, sync_mode=sync_mode, config=config or {},
                           connector=connector, allocation=allocation, allocation_value=allocation_value,
                           safety_stock=safety_stock, created_at=utcnow())
    validate_config(channel)
    session.add(channel)
    await session.flush()
    await repo.sync_state(channel.id)
    return channel


async def get_channel(session: AsyncSession, *, code: str) -> SalesChannel:
    channel = await ChannelRepository(session).by_code(code)
    if channel is None:
        raise ChannelNotFound(f"No sales channel {code!r}.")
    return channel


async def list_channels(session: AsyncSession) -> list[SalesChannel]:
    return list(await ChannelRepository(session).all())


async def set_allocation(session: AsyncSession, *, code: str, allocation: str, allocation_value: int,
                         safety_stock: int) -> SalesChannel:
    """Change how much of the pool a channel is shown; the next push or reconciliation applies it."""
    _check_allocation(allocation, allocation_value, safety_stock)
    channel = await get_channel(session, code=code)
    channel.allocation = allocation
    channel.allocation_value = allocation_value
    channel.safety_stock = safety_stock
    await session.flush()
    return channel


def shown_quantity(channel: SalesChannel, available: int) -> int:
    return channel_quantity(available, allocation=channel.allocation, allocation_value=channel.allocation_value,
                            safety_stock=channel.safety_stock)


async def channel_stock(session: AsyncSession, *, code: str, skus: Sequence[str]) -> dict[str, int]:
    """What a channel may sell per SKU now: the core's available stock after its allocation and safety stock.

    Chat channels (sync mode direct) call this instead of receiving pushes.
    """
    channel = await get_channel(session, code=code)
    available = await available_stock(session, skus=skus)
    return {sku: shown_quantity(channel, quantity) for sku, quantity in available.items()}


def public_config(config: dict[str, Any]) -> dict[str, Any]:
    """A channel's config with its secrets masked, fit to show a merchant."""
    return {key: ("********" if key in SECRET_KEYS and value else value) for key, value in config.items()}
