"""Queries of the channel adapters."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.models import ChannelContact, ChannelReceipt, PayloadToken
from kit.clock import utcnow

# A later report never moves a message back (a late "sent" after "read"); a failure is final.
STATUS_RANK = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}


async def callback_payload(session: AsyncSession, *, token: str) -> str | None:
    row = await session.get(PayloadToken, token)
    return None if row is None else row.payload


async def save_callback_token(session: AsyncSession, *, token: str, payload: str) -> None:
    if await session.get(PayloadToken, token) is not None:
        return
    try:
        async with session.begin_nested():
            session.add(PayloadToken(token=token, payload=payload, created_at=utcnow()))
    except IntegrityError:  # a concurrent sender stored the same token (same payload): fine
        pass


async def _receipt(session: AsyncSession, channel: str, external_id: str) -> ChannelReceipt | None:
    return await session.scalar(select(ChannelReceipt).where(ChannelReceipt.channel == channel,
                                                             ChannelReceipt.external_id == external_id)
                                .with_for_update())


async def record_receipt(session: AsyncSession, *, channel: str, external_id: str, status: str,
                         message_id: int | None = None, recipient_id: str | None = None,
                         error: str | None = None) -> None:
    """Record what the channel says of a message; a status report may arrive before we noted the send."""
    for _ in range(2):
        row = await _receipt(session, channel, external_id)
        if row is not None:
            if message_id is not None:
                row.message_id = message_id
            if STATUS_RANK.get(status, 0) > STATUS_RANK.get(row.status, 0):
                row.status, row.error = status, error
            row.updated_at = utcnow()
            await session.flush()
            return
        try:
            async with session.begin_nested():
                session.add(ChannelReceipt(channel=channel, external_id=external_id, message_id=message_id,
                                           recipient_id=recipient_id, status=status, error=error,
                                           updated_at=utcnow()))
            return
        except IntegrityError:  # the other report stored it first: update that row
            continue


async def receipts_of(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, list[ChannelReceipt]]:
    if not message_ids:
        return {}
    rows = (await session.scalars(select(ChannelReceipt).where(ChannelReceipt.message_id.in_(list(message_ids)))
                                  .order_by(ChannelReceipt.id))).all()
    found: dict[int, list[ChannelReceipt]] = {}
    for row in rows:
        assert row.message_id is not None
        found.setdefault(row.message_id, []).append(row)
    return found


async def touch_contact(session: AsyncSession, *, channel: str, sender_id: str, at: datetime) -> None:
    row = await session.get(ChannelContact, (channel, sender_id), with_for_update=True)
    if row is not None:
        row.last_inbound_at = max(row.last_inbound_at, at)
        return
    try:
        async with session.begin_nested():
            session.add(ChannelContact(channel=channel, sender_id=sender_id, last_inbound_at=at))
    except IntegrityError:  # a concurrent message of the same shopper: its time is as good
        pass


async def last_inbound_at(session: AsyncSession, *, channel: str, sender_id: str) -> datetime | None:
    row = await session.get(ChannelContact, (channel, sender_id))
    return None if row is None else row.last_inbound_at
