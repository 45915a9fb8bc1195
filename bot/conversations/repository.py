from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Select, Table, bindparam, case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations.models import Conversation, ConversationMessage, VerificationAttempt
from kit.db import insert_if_new

_MESSAGES = cast(Table, ConversationMessage.__table__)
_CONVERSATIONS = cast(Table, Conversation.__table__)
# Core, not the ORM's unit of work: several replies go in one round trip, ids back in parameter order.
_INSERT_OUTBOUND = insert(_MESSAGES).returning(_MESSAGES.c.id, sort_by_parameter_order=True)

# Statements every turn runs are built once, with bound parameters: SQLAlchemy then reuses their cache key
# and compiled form instead of building and hashing a new statement per call (0.62 -> 0.35 ms of CPU for the
# conversation's read on PostgreSQL).
# A repeat is a repeat only within the conversation being read: another sender's message id is not this one's.
_SEEN = select(_MESSAGES.c.id).where(_MESSAGES.c.conversation_id == Conversation.id,
                                     _MESSAGES.c.external_id == bindparam("external_id")
                                     ).correlate(Conversation).scalar_subquery()


def _of_sender(query: Select[Any], *, lock: bool) -> Select[Any]:
    query = query.where(Conversation.channel == bindparam("channel"), Conversation.sender_id == bindparam("sender_id"))
    return query.with_for_update(of=Conversation).execution_options(populate_existing=True) if lock else query


# (with the seen message's id, row-locked): PostgreSQL locks the row; SQLite's unit of work holds the write lock.
_BY_SENDER = {(seen, lock): _of_sender(select(Conversation, _SEEN) if seen else select(Conversation), lock=lock)
              for seen in (False, True) for lock in (False, True)}
_FAILED_SINCE = VerificationAttempt.succeeded.is_(False) & (VerificationAttempt.created_at >= bindparam("since"))
_OF_CONVERSATION = VerificationAttempt.conversation_id == bindparam("conversation_id")
_OF_ORDER = VerificationAttempt.order_number == bindparam("order_number")
# Counts and the time of the latest failure (the back-off runs from it), for the client and the target at once.
_FAILED_VERIFICATIONS = {
    False: select(func.count(VerificationAttempt.id), func.max(VerificationAttempt.created_at))
    .where(_FAILED_SINCE, _OF_CONVERSATION),
    True: select(func.count(case((_OF_CONVERSATION, 1))), func.count(case((_OF_ORDER, 1))),
                 func.max(case((_OF_CONVERSATION, VerificationAttempt.created_at))),
                 func.max(case((_OF_ORDER, VerificationAttempt.created_at))))
    .where(_FAILED_SINCE, _OF_CONVERSATION | _OF_ORDER),
}


class FailedProofs(NamedTuple):
    """Wrong ownership proofs in the window: by the conversation (the client) and for the order (the target)."""

    by_conversation: int
    for_order: int
    last_by_conversation: datetime | None
    last_for_order: datetime | None


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_sender(self, channel: str, sender_id: str, *, lock: bool = False) -> Conversation | None:
        """`lock`: row-lock it for this transaction (PostgreSQL; SQLite's unit of work holds the write lock)."""
        found: Conversation | None = await self.session.scalar(
            _BY_SENDER[False, self._locks(lock)], {"channel": channel, "sender_id": sender_id})
        return found

    async def mode_by_sender(self, channel: str, sender_id: str) -> str | None:
        """The conversation's mode ("bot" or "human"), unlocked; None before the first message."""
        mode: str | None = await self.session.scalar(
            select(Conversation.mode).where(Conversation.channel == channel, Conversation.sender_id == sender_id))
        return mode

    async def by_sender_with_seen(self, channel: str, sender_id: str,
                                  external_id: str) -> tuple[Conversation | None, int | None]:
        """The conversation, locked as `by_sender(lock=True)` locks it, and the id of its message stored under
        `external_id` if there is one, in one statement."""
        row = (await self.session.execute(_BY_SENDER[True, self._locks(True)], {
            "channel": channel, "sender_id": sender_id, "external_id": external_id})).first()
        if row is None:
            return None, None
        return row[0], None if row[1] is None else int(row[1])

    def _locks(self, lock: bool) -> bool:
        return lock and self.session.get_bind().dialect.name == "postgresql"

    async def insert_inbound(self, values: dict[str, Any]) -> int | None:
        """Insert an inbound message in one statement; None when (conversation_id, external_id) is already stored."""
        statement = insert_if_new(self.session.get_bind().dialect.name, _MESSAGES, ("conversation_id", "external_id"))
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

    async def inbound_by_external(self, conversation_id: int, external_id: str) -> ConversationMessage | None:
        return await self.session.scalar(select(ConversationMessage).where(
            ConversationMessage.conversation_id == conversation_id, ConversationMessage.external_id == external_id))

    async def replies_to(self, message_id: int) -> Sequence[ConversationMessage]:
        return (await self.session.scalars(select(ConversationMessage).where(
            ConversationMessage.in_reply_to == message_id, ConversationMessage.direction == "out")
            .order_by(ConversationMessage.id))).all()

    async def last_messages(self, conversation_id: int, limit: int) -> Sequence[ConversationMessage]:
        rows = (await self.session.scalars(select(ConversationMessage)
                                           .where(ConversationMessage.conversation_id == conversation_id)
                                           .order_by(ConversationMessage.id.desc()).limit(limit))).all()
        return list(reversed(rows))

    async def failed_verifications_since(self, since: datetime, conversation_id: int,
                                         order_number: str | None = None) -> FailedProofs:
        """Failed ownership proofs since `since`, with the latest one's time: of this conversation, and of
        `order_number` from any conversation (0 without one), in one statement."""
        values: dict[str, Any] = {"since": since, "conversation_id": conversation_id}
        if order_number is None:
            count, last = (await self.session.execute(_FAILED_VERIFICATIONS[False], values)).one()
            return FailedProofs(int(count or 0), 0, last, None)
        row = (await self.session.execute(_FAILED_VERIFICATIONS[True],
                                          {**values, "order_number": order_number})).one()
        return FailedProofs(int(row[0] or 0), int(row[1] or 0), row[2], row[3])
