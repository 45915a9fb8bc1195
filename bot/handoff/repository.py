"""All queries of the handoff package."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations.models import Conversation, ConversationMessage
from bot.handoff.models import (
    Agent,
    AgentReply,
    AgentSession,
    CannedResponse,
    CsatSurvey,
    FaqDraftFromAgent,
    HandoffThread,
    IntentCorrection,
    PrivateNote,
    ShopHandoffRules,
)
from kit.outbox import OutboxEvent


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


# Reads of chat turns, built once (SQLAlchemy reuses their cache key and compiled form).
_RULES_STAMP = select(ShopHandoffRules.updated_at).where(ShopHandoffRules.shop_id == bindparam("shop_id"))
_UNASSIGNED_QUEUE = select(HandoffThread).where(
    HandoffThread.shop_id == bindparam("shop_id"), HandoffThread.status == "open", HandoffThread.assignee_id.is_(None),
).order_by(HandoffThread.opened_at, HandoffThread.conversation_id)


class HandoffRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---- agents and sessions ----
    async def agent_by_email(self, email: str) -> Agent | None:
        return await self.session.scalar(select(Agent).where(func.lower(Agent.email) == email.lower()))

    async def agent(self, agent_id: int) -> Agent | None:
        return await self.session.get(Agent, agent_id)

    async def agents_of_shop(self, shop_id: int) -> Sequence[Agent]:
        return (await self.session.scalars(select(Agent).where(Agent.shop_id == shop_id, Agent.disabled_at.is_(None))
                                           .order_by(Agent.id))).all()

    async def session_by_hash(self, token_hash: str) -> AgentSession | None:
        return await self.session.scalar(select(AgentSession).where(AgentSession.token_hash == token_hash))

    async def touch_agent(self, agent_id: int, now: datetime) -> None:
        await self.session.execute(update(Agent).where(Agent.id == agent_id).values(last_seen_at=now))

    # ---- threads ----
    async def thread(self, conversation_id: int) -> HandoffThread | None:
        return await self.session.get(HandoffThread, conversation_id)

    async def claim(self, *, conversation_id: int, shop_id: int, agent_id: int, now: datetime) -> bool:
        """The one statement that decides who gets a conversation: only a still-unowned open thread moves."""
        result = await self.session.execute(
            update(HandoffThread)
            .where(HandoffThread.conversation_id == conversation_id, HandoffThread.shop_id == shop_id,
                   HandoffThread.status == "open", HandoffThread.assignee_id.is_(None))
            .values(assignee_id=agent_id, assigned_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
        return _rowcount(result) == 1

    async def move(self, *, conversation_id: int, shop_id: int, from_agent_id: int | None, to_agent_id: int,
                   now: datetime) -> bool:
        """Transfer: only moves when the thread is still open and still where the caller saw it."""
        owner = (HandoffThread.assignee_id.is_(None) if from_agent_id is None
                 else HandoffThread.assignee_id == from_agent_id)
        result = await self.session.execute(
            update(HandoffThread)
            .where(HandoffThread.conversation_id == conversation_id, HandoffThread.shop_id == shop_id,
                   HandoffThread.status == "open", owner)
            .values(assignee_id=to_agent_id, assigned_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
        return _rowcount(result) == 1

    async def close(self, *, conversation_id: int, shop_id: int, status: str, agent_id: int,
                    now: datetime) -> bool:
        result = await self.session.execute(
            update(HandoffThread)
            .where(HandoffThread.conversation_id == conversation_id, HandoffThread.shop_id == shop_id,
                   HandoffThread.status == "open")
            .values(status=status, resolved_at=now, resolved_by=agent_id, draft_text=None,
                    draft_for_message_id=None, updated_at=now)
            .execution_options(synchronize_session=False))
        return _rowcount(result) == 1

    async def reopen(self, *, conversation_id: int, reason: str | None, now: datetime) -> bool:
        result = await self.session.execute(
            update(HandoffThread)
            .where(HandoffThread.conversation_id == conversation_id, HandoffThread.status != "open")
            .values(status="open", assignee_id=None, assigned_at=None, resolved_at=None, resolved_by=None,
                    reason=reason, opened_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
        return _rowcount(result) == 1

    async def human_conversations_without_open_thread(self, limit: int = 200) -> Sequence[Conversation]:
        open_thread = select(HandoffThread.conversation_id).where(HandoffThread.status == "open")
        return (await self.session.scalars(
            select(Conversation).where(Conversation.mode == "human", Conversation.id.not_in(open_thread))
            .order_by(Conversation.id).limit(limit))).all()

    async def threads(self, *, shop_id: int, status: str | None, assignee_id: int | None = None,
                      unassigned: bool = False, limit: int = 200) -> Sequence[tuple[HandoffThread, Conversation]]:
        query = (select(HandoffThread, Conversation)
                 .join(Conversation, Conversation.id == HandoffThread.conversation_id)
                 .where(HandoffThread.shop_id == shop_id))
        if status is not None:
            query = query.where(HandoffThread.status == status)
        if assignee_id is not None:
            query = query.where(HandoffThread.assignee_id == assignee_id)
        if unassigned:
            query = query.where(HandoffThread.assignee_id.is_(None))
        order = HandoffThread.resolved_at.desc() if status == "resolved" else HandoffThread.opened_at
        rows = (await self.session.execute(query.order_by(order, HandoffThread.conversation_id).limit(limit))).all()
        return [(row[0], row[1]) for row in rows]

    async def bot_conversations(self, *, limit: int = 50) -> Sequence[Conversation]:
        """Conversations the bot is answering and nobody has an open thread on (candidates to take over)."""
        open_thread = select(HandoffThread.conversation_id).where(HandoffThread.status == "open")
        return (await self.session.scalars(
            select(Conversation).where(Conversation.mode == "bot", Conversation.id.not_in(open_thread))
            .order_by(Conversation.updated_at.desc()).limit(limit))).all()

    async def unassigned_queue(self, shop_id: int) -> Sequence[HandoffThread]:
        return (await self.session.scalars(_UNASSIGNED_QUEUE, {"shop_id": shop_id})).all()

    async def open_load(self, shop_id: int) -> dict[int, int]:
        rows = (await self.session.execute(
            select(HandoffThread.assignee_id, func.count())
            .where(HandoffThread.shop_id == shop_id, HandoffThread.status == "open",
                   HandoffThread.assignee_id.is_not(None))
            .group_by(HandoffThread.assignee_id))).all()
        return {agent_id: int(count) for agent_id, count in rows if agent_id is not None}

    async def online_agents(self, shop_id: int, seen_since: datetime) -> Sequence[Agent]:
        return (await self.session.scalars(
            select(Agent).where(Agent.shop_id == shop_id, Agent.available.is_(True), Agent.disabled_at.is_(None),
                                Agent.last_seen_at >= seen_since)
            .order_by(Agent.last_assigned_at.is_not(None), Agent.last_assigned_at, Agent.id))).all()

    async def mark_assigned(self, agent_id: int, now: datetime) -> None:
        await self.session.execute(update(Agent).where(Agent.id == agent_id).values(last_assigned_at=now))

    async def recent_handle_seconds(self, shop_id: int, limit: int = 20) -> list[float]:
        rows = (await self.session.execute(
            select(HandoffThread.opened_at, HandoffThread.resolved_at)
            .where(HandoffThread.shop_id == shop_id, HandoffThread.status == "resolved",
                   HandoffThread.resolved_at.is_not(None))
            .order_by(HandoffThread.resolved_at.desc()).limit(limit))).all()
        return [(resolved - opened).total_seconds() for opened, resolved in rows if resolved and opened]

    # ---- messages ----
    async def messages(self, conversation_id: int, limit: int = 500) -> list[ConversationMessage]:
        rows = (await self.session.scalars(select(ConversationMessage)
                                           .where(ConversationMessage.conversation_id == conversation_id)
                                           .order_by(ConversationMessage.id.desc()).limit(limit))).all()
        return list(reversed(rows))

    async def message(self, message_id: int) -> ConversationMessage | None:
        return await self.session.get(ConversationMessage, message_id)

    async def last_inbound(self, conversation_id: int) -> ConversationMessage | None:
        return await self.session.scalar(select(ConversationMessage).where(
            ConversationMessage.conversation_id == conversation_id, ConversationMessage.direction == "in")
            .order_by(ConversationMessage.id.desc()).limit(1))

    async def last_shopper_messages(self, conversation_ids: Sequence[int]) -> dict[int, ConversationMessage]:
        if not conversation_ids:
            return {}
        # The shopper's latest words are what an agent triages by, not the bot's "a person is coming".
        newest = (select(func.max(ConversationMessage.id))
                  .where(ConversationMessage.conversation_id.in_(conversation_ids),
                         ConversationMessage.direction == "in")
                  .group_by(ConversationMessage.conversation_id))
        rows = (await self.session.scalars(select(ConversationMessage).where(ConversationMessage.id.in_(newest)))).all()
        return {row.conversation_id: row for row in rows}

    async def messages_after(self, after_id: int, limit: int = 500) -> Sequence[ConversationMessage]:
        return (await self.session.scalars(select(ConversationMessage).where(ConversationMessage.id > after_id)
                                           .order_by(ConversationMessage.id).limit(limit))).all()

    async def newest_message_id(self) -> int:
        return int(await self.session.scalar(select(func.max(ConversationMessage.id))) or 0)

    async def replies_by_agent(self, message_ids: Sequence[int]) -> dict[int, tuple[AgentReply, str]]:
        if not message_ids:
            return {}
        rows = (await self.session.execute(select(AgentReply, Agent.name).join(Agent, Agent.id == AgentReply.agent_id)
                                           .where(AgentReply.message_id.in_(message_ids)))).all()
        return {row[0].message_id: (row[0], row[1]) for row in rows}

    async def deliveries(self, keys: Sequence[str]) -> dict[str, OutboxEvent]:
        if not keys:
            return {}
        rows = (await self.session.scalars(select(OutboxEvent).where(OutboxEvent.idempotency_key.in_(keys)))).all()
        return {row.idempotency_key: row for row in rows}

    # ---- notes, canned responses ----
    async def notes(self, conversation_id: int) -> Sequence[tuple[PrivateNote, str]]:
        rows = (await self.session.execute(select(PrivateNote, Agent.name).join(Agent, Agent.id == PrivateNote.agent_id)
                                           .where(PrivateNote.conversation_id == conversation_id)
                                           .order_by(PrivateNote.id))).all()
        return [(row[0], row[1]) for row in rows]

    async def canned(self, shop_id: int) -> Sequence[CannedResponse]:
        return (await self.session.scalars(select(CannedResponse).where(CannedResponse.shop_id == shop_id)
                                           .order_by(CannedResponse.shortcut))).all()

    async def canned_by_shortcut(self, shop_id: int, shortcut: str) -> CannedResponse | None:
        return await self.session.scalar(select(CannedResponse).where(CannedResponse.shop_id == shop_id,
                                                                      CannedResponse.shortcut == shortcut))

    # ---- CSAT ----
    async def open_survey(self, conversation_id: int) -> CsatSurvey | None:
        return await self.session.scalar(select(CsatSurvey).where(
            CsatSurvey.conversation_id == conversation_id, CsatSurvey.score.is_(None))
            .order_by(CsatSurvey.asked_at.desc(), CsatSurvey.id.desc()).limit(1))

    async def answer_survey(self, survey_id: int, score: int, now: datetime) -> bool:
        result = await self.session.execute(update(CsatSurvey).where(CsatSurvey.id == survey_id,
                                                                     CsatSurvey.score.is_(None))
                                            .values(score=score, answered_at=now)
                                            .execution_options(synchronize_session=False))
        return _rowcount(result) == 1

    async def csat_per_agent(self, shop_id: int) -> Sequence[tuple[int | None, str | None, int, int, float | None]]:
        rows = (await self.session.execute(
            select(CsatSurvey.agent_id, Agent.name, func.count(CsatSurvey.id), func.count(CsatSurvey.score),
                   func.avg(CsatSurvey.score))
            .outerjoin(Agent, Agent.id == CsatSurvey.agent_id)
            .where(CsatSurvey.shop_id == shop_id)
            .group_by(CsatSurvey.agent_id, Agent.name).order_by(CsatSurvey.agent_id))).all()
        return [(r[0], r[1], int(r[2]), int(r[3]), float(r[4]) if r[4] is not None else None) for r in rows]

    # ---- learning ----
    async def correction_for(self, message_id: int) -> IntentCorrection | None:
        return await self.session.scalar(select(IntentCorrection).where(IntentCorrection.message_id == message_id))

    async def corrections(self, shop_id: int | None = None) -> Sequence[IntentCorrection]:
        query = select(IntentCorrection).order_by(IntentCorrection.intent, IntentCorrection.id)
        if shop_id is not None:
            query = query.where(IntentCorrection.shop_id == shop_id)
        return (await self.session.scalars(query)).all()

    async def count_corrections(self, shop_id: int) -> int:
        return int(await self.session.scalar(select(func.count(IntentCorrection.id))
                                             .where(IntentCorrection.shop_id == shop_id)) or 0)

    async def faq_drafts(self, shop_id: int) -> Sequence[FaqDraftFromAgent]:
        return (await self.session.scalars(select(FaqDraftFromAgent).where(FaqDraftFromAgent.shop_id == shop_id)
                                           .order_by(FaqDraftFromAgent.id.desc()))).all()

    # ---- rules ----
    async def rules(self, shop_id: int, *, fresh: bool = False) -> ShopHandoffRules | None:
        return await self.session.get(ShopHandoffRules, shop_id, populate_existing=fresh)

    async def rules_stamp(self, shop_id: int) -> datetime | None:
        """When the shop's rules last changed (one primary-key read; None when it saved none)."""
        stamp: datetime | None = await self.session.scalar(_RULES_STAMP, {"shop_id": shop_id})
        return stamp

    async def canned_item(self, canned_id: int) -> CannedResponse | None:
        return await self.session.get(CannedResponse, canned_id)

    async def delete_canned(self, canned_id: int) -> bool:
        result = await self.session.execute(delete(CannedResponse).where(CannedResponse.id == canned_id)
                                            .execution_options(synchronize_session="fetch"))
        return _rowcount(result) == 1

