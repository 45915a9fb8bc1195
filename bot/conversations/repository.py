from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations.models import Conversation, ConversationMessage, VerificationAttempt
from kit.db import insert_if_new

_MESSAGES = cast(Table, ConversationMessage.__table__)
_CONVERSATIONS = cast(Table, Conversation.__table__)
# Core, not the ORM's unit of work: several replies go in one round trip, ids back in parameter order.
_INSERT_OUTBOUND = insert(_MESSAGES).returning(_MESSAGES.c.id, sort_by_parameter_order=True)


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_sender(self, channel: str, sender_id: str, *, lock: bool = False) -> Conversation | None:
        """`lock`: row-lock it for this transaction (PostgreSQL; SQLite's unit of work holds the write lock)."""
        found: Conversation | None = await self.session.scalar(self._of_sender(select(Conversation), channel,
                                                                              sender_id, lock=lock))
        return found

    async def by_sender_with_seen(self, channel: str, sender_id: str,
                                  external_id: str) -> tuple[Conversation | None, int | None]:
        """The conversation, locked as `by_sender(lock=True)` locks it, and the id of the message stored under
        (channel, external_id) if there is one, in one statement."""
        seen = select(_MESSAGES.c.id).where(_MESSAGES.c.channel == channel,
                                            _MESSAGES.c.external_id == external_id).scalar_subquery()
        row = (await self.session.execute(self._of_sender(select(Conversation, seen), channel, sender_id,
                                                          lock=True))).first()
        if row is None:
            return None, None
        return row[0], None if row[1] is None else int(row[1])

    def _of_sender(self, query: Select[Any], channel: str, sender_id: str, *, lock: bool) -> Select[Any]:
        query = query.where(Conversation.channel == channel, Conversation.sender_id == sender_id)
        if lock and self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=Conversation).execution_options(populate_existing=True)
        return query

    async def insert_inbound(self, values: dict[str, Any]) -> int | None:
        """Insert an inbound message in one statement; None when (channel, external_id) is already stored."""
        statement = insert_if_new(self.session.get_bind().dialect.name, _MESSAGES, ("channel", "external_id"))
        new_id = await self.session.scalar(statement, values)
        return None if new_id is None else int(new_id)

    async def insert_conversation(self, values: dict[str, Any]) -> int | None:
        """Insert a conversation in one statement; None when this (channel, sender_id) has one already."""
        statement = insert_if_new(self.session.get_bind().dialect.name, _CONVERSATIONS, ("channel", "sender_id"))
        new_id = await self.session.scalar(statement, values)
        return None if new_id is None else int(new_id)

    async def insert_outbound(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert replies (every row with the same keys) in one statement; their ids in the rows' order."""
        if not rows:
            return []
        result = await self.session.execute(_INSERT_OUTBOUND, rows)
        return [int(new_id) for new_id in result.scalars()]

    async def by_id(self, conversation_id: int) -> Conversation | None:
        return await self.session.get(Conversation, conversation_id)

    async def inbound_by_external(self, channel: str, external_id: str) -> ConversationMessage | None:
        return await self.session.scalar(select(ConversationMessage).where(
            ConversationMessage.channel == channel, ConversationMessage.external_id == external_id))

    async def replies_to(self, message_id: int) -> Sequence[ConversationMessage]:
        return (await self.session.scalars(select(ConversationMessage).where(
            ConversationMessage.in_reply_to == message_id, ConversationMessage.direction == "out")
            .order_by(ConversationMessage.id))).all()

    async def last_messages(self, conversation_id: int, limit: int) -> Sequence[ConversationMessage]:
        rows = (await self.session.scalars(select(ConversationMessage)
                                           .where(ConversationMessage.conversation_id == conversation_id)
                                           .order_by(ConversationMessage.id.desc()).limit(limit))).all()
        return list(reversed(rows))

    async def failed_verifications_of_order_since(self, order_number: str, since: datetime) -> int:
        return int(await self.session.scalar(select(func.count(VerificationAttempt.id)).where(
            VerificationAttempt.order_number == order_number, VerificationAttempt.succeeded.is_(False),
            VerificationAttempt.created_at >= since)) or 0)

    async def failed_verifications_since(self, conversation_id: int, since: datetime) -> int:
        return int(await self.session.scalar(select(func.count(VerificationAttempt.id)).where(
            VerificationAttempt.conversation_id == conversation_id, VerificationAttempt.succeeded.is_(False),
            VerificationAttempt.created_at >= since)) or 0)
