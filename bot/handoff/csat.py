"""Customer satisfaction: the 1-5 question sent when an agent resolves a conversation, the shopper's answer,
and the results per agent."""
from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations.models import Conversation, ConversationMessage
from bot.handoff import texts
from bot.handoff._rows import rowcount
from bot.handoff.delivery import send
from bot.handoff.errors import BadAgentInput
from bot.handoff.models import Agent, CsatSurvey
from bot.messages import Button
from kit.clock import utcnow

CSAT_PAYLOAD = re.compile(r"^csat:([1-5])$")


class CsatStat(BaseModel):
    agent_id: int | None
    agent_name: str | None
    asked: int
    answered: int
    average: float | None


class CsatRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_survey(self, conversation_id: int) -> CsatSurvey | None:
        return await self.session.scalar(select(CsatSurvey).where(
            CsatSurvey.conversation_id == conversation_id, CsatSurvey.score.is_(None))
            .order_by(CsatSurvey.asked_at.desc(), CsatSurvey.id.desc()).limit(1))

    async def answer_survey(self, survey_id: int, score: int, now: datetime) -> bool:
        result = await self.session.execute(update(CsatSurvey).where(CsatSurvey.id == survey_id,
                                                                     CsatSurvey.score.is_(None))
                                            .values(score=score, answered_at=now)
                                            .execution_options(synchronize_session=False))
        return rowcount(result) == 1

    async def csat_per_agent(self, shop_id: int) -> Sequence[tuple[int | None, str | None, int, int, float | None]]:
        rows = (await self.session.execute(
            select(CsatSurvey.agent_id, Agent.name, func.count(CsatSurvey.id), func.count(CsatSurvey.score),
                   func.avg(CsatSurvey.score))
            .outerjoin(Agent, Agent.id == CsatSurvey.agent_id)
            .where(CsatSurvey.shop_id == shop_id)
            .group_by(CsatSurvey.agent_id, Agent.name).order_by(CsatSurvey.agent_id))).all()
        return [(r[0], r[1], int(r[2]), int(r[3]), float(r[4]) if r[4] is not None else None) for r in rows]


async def ask_rating(session: AsyncSession, *, conversation: Conversation, shop_id: int, rated_agent_id: int,
                     sent_by: int, now: datetime) -> None:
    """Open a survey for the agent who handled the conversation and send the shopper the 1-5 question."""
    session.add(CsatSurvey(shop_id=shop_id, conversation_id=conversation.id, agent_id=rated_agent_id, asked_at=now))
    buttons = [Button(title=str(n), payload=f"csat:{n}") for n in range(1, 6)]
    await send(session, conversation=conversation, agent_id=sent_by, source="csat", author="system",
               text=texts.text(conversation.locale, "csat_question"), buttons=buttons)


async def record_csat(session: AsyncSession, *, conversation_id: int, score: int) -> bool:
    """Store the shopper's rating for the latest unanswered survey; False when none is waiting."""
    if not 1 <= score <= 5:
        raise BadAgentInput("A rating is 1 to 5.", code="invalid_rating")
    repo = CsatRepository(session)
    survey = await repo.open_survey(conversation_id)
    return survey is not None and await repo.answer_survey(survey.id, score, utcnow())


def csat_score_of(message: ConversationMessage) -> int | None:
    """The rating a shopper message carries (a pressed 1-5 button), if any."""
    match = CSAT_PAYLOAD.match((message.payload or message.text or "").strip())
    return int(match.group(1)) if match and message.direction == "in" else None


async def csat_per_agent(session: AsyncSession, *, shop_id: int) -> list[CsatStat]:
    return [CsatStat(agent_id=a, agent_name=n, asked=asked, answered=answered,
                     average=round(avg, 2) if avg is not None else None)
            for a, n, asked, answered, avg in await CsatRepository(session).csat_per_agent(shop_id)]
