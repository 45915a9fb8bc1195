"""What the shopper's app reported of our messages (WhatsApp statuses), summed up per stored message."""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels import repository
from bot.channels.repository import STATUS_RANK


async def delivery_statuses(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, str]:
    """Per message id: `failed` when any of its parts failed, else the least advanced part's status
    (accepted, sent, delivered, read); messages the channel reports nothing of are absent."""
    summary: dict[int, str] = {}
    for message_id, rows in (await repository.receipts_of(session, message_ids)).items():
        statuses = [row.status for row in rows]
        summary[message_id] = "failed" if "failed" in statuses else min(statuses, key=lambda s: STATUS_RANK.get(s, 0))
    return summary


async def failure_of(session: AsyncSession, message_id: int) -> str | None:
    """The channel's reason a message failed, if it did."""
    rows = (await repository.receipts_of(session, [message_id])).get(message_id, [])
    return next((row.error for row in rows if row.status == "failed"), None)
