"""Private notes between agents on a conversation; the shopper never sees them."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff.inbox import thread_of_shop
from bot.handoff.models import Agent, PrivateNote
from bot.handoff.replies import clean_text
from kit.clock import utcnow

MAX_NOTE_CHARS = 4000


class NoteView(BaseModel):
    id: int
    agent_name: str
    body: str
    created_at: datetime


class NoteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def notes(self, conversation_id: int) -> Sequence[tuple[PrivateNote, str]]:
        rows = (await self.session.execute(select(PrivateNote, Agent.name).join(Agent, Agent.id == PrivateNote.agent_id)
                                           .where(PrivateNote.conversation_id == conversation_id)
                                           .order_by(PrivateNote.id))).all()
        return [(row[0], row[1]) for row in rows]


async def add_note(session: AsyncSession, *, agent: Agent, conversation_id: int, body: str) -> PrivateNote:
    """A private note for colleagues; never sent to the shopper."""
    text = clean_text(body, limit=MAX_NOTE_CHARS, what="note")
    await thread_of_shop(session, agent, conversation_id)
    note = PrivateNote(conversation_id=conversation_id, agent_id=agent.id, body=text, created_at=utcnow())
    session.add(note)
    await session.flush()
    return note
