"""Connecting an existing sales channel to its connector (webhook, Shopify) and disconnecting it: what the back
office's channels screen changes besides allocation. A disconnected channel keeps its history (orders, sync state,
reconciliations) but is no longer pushed to or pulled from, and its secrets are forgotten."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from commerce.channels.connectors import validate_config
from commerce.channels.errors import InvalidChannelConfig
from commerce.channels.models import SalesChannel
from commerce.channels.schemas import SECRET_KEYS
from commerce.channels.service import CONNECTOR_NAMES, SYNC_MODES, get_channel
from kit.errors import InvalidInput


async def connect_channel(session: AsyncSession, *, code: str, connector: str, sync_mode: str,
                          config: dict[str, Any]) -> SalesChannel:
    """Point a channel at its connector with a complete config (checked as `create_channel` checks it). A secret
    left empty keeps the one stored, so a merchant can change the URL without re-typing the secret."""
    if sync_mode not in SYNC_MODES:
        raise InvalidInput(f"sync_mode must be one of {', '.join(SYNC_MODES)}.", code="invalid_sync_mode",
                           field="sync_mode")
    if connector not in CONNECTOR_NAMES or connector == "none":
        raise InvalidChannelConfig(f"connector must be one of {', '.join(CONNECTOR_NAMES[1:])}.",
                                   code="invalid_connector", field="connector")
    if sync_mode == "direct":
        raise InvalidInput("A connected channel is synced by push, pull or both; 'direct' is for chat channels.",
                           code="invalid_sync_mode", field="sync_mode")
    channel = await get_channel(session, code=code)
    merged = {k: v for k, v in config.items() if v not in (None, "")}
    for key in SECRET_KEYS:
        if key not in merged and channel.config.get(key) and channel.connector == connector:
            merged[key] = channel.config[key]
    previous = (channel.connector, channel.sync_mode, dict(channel.config))
    channel.connector, channel.sync_mode, channel.config = connector, sync_mode, merged
    try:
        validate_config(channel)
    except InvalidChannelConfig:
        channel.connector, channel.sync_mode, channel.config = previous
        raise
    await session.flush()
    return channel


async def disconnect_channel(session: AsyncSession, *, code: str) -> SalesChannel:
    """Stop pushing to and pulling from a channel: connector none, sync mode direct, secrets dropped."""
    channel = await get_channel(session, code=code)
    channel.connector = "none"
    channel.sync_mode = "direct"
    channel.config = {k: v for k, v in channel.config.items() if k not in SECRET_KEYS}
    await session.flush()
    return channel
