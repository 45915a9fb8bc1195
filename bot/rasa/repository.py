from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations.models import Conversation
from bot.rasa.models import RasaAssistant, RasaTrackerEvent
from kit.clock import utcnow

# Asked on every message the Rasa stories may answer: built once (SQLAlchemy reuses its compiled form).
_ACTIVE_KEY = select(RasaAssistant.id, RasaAssistant.created_at).where(RasaAssistant.active.is_(True)) \
    .order_by(RasaAssistant.id.desc()).limit(1)


class RasaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active(self) -> RasaAssistant | None:
        return await self.session.scalar(select(RasaAssistant).where(RasaAssistant.active.is_(True))
                                         .order_by(RasaAssistant.id.desc()).limit(1))

    async def active_key(self) -> tuple[int, str] | None:
        """(id, created_at) of the active assistant: small enough to ask on every message."""
        row = (await self.session.execute(_ACTIVE_KEY)).first()
        return (int(row[0]), row[1].isoformat()) if row is not None else None

    async def by_id(self, assistant_id: int) -> RasaAssistant | None:
        return await self.session.get(RasaAssistant, assistant_id)

    async def add_active(self, assistant: RasaAssistant) -> RasaAssistant:
        await self.session.execute(update(RasaAssistant).where(RasaAssistant.active.is_(True)).values(active=False))
        assistant.active = True
        self.session.add(assistant)
        await self.session.flush()
        return assistant

    async def deactivate_all(self) -> None:
        await self.session.execute(update(RasaAssistant).where(RasaAssistant.active.is_(True)).values(active=False))

    async def conversation_of_sender(self, sender_id: str) -> int | None:
        """The conversation of a Rasa sender id (any channel; the one with Rasa events, newest, first)."""
        has_events = select(RasaTrackerEvent.id).where(RasaTrackerEvent.conversation_id == Conversation.id) \
            .exists()
        row = (await self.session.execute(
            select(Conversation.id).where(Conversation.sender_id == sender_id)
            .order_by(has_events.desc(), Conversation.id.desc()).limit(1))).first()
        return int(row[0]) if row is not None else None

    async def events(self, conversation_id: int) -> Sequence[RasaTrackerEvent]:
        return (await self.session.scalars(select(RasaTrackerEvent)
                                           .where(RasaTrackerEvent.conversation_id == conversation_id)
                                           .order_by(RasaTrackerEvent.position))).all()

    async def append(self, conversation_id: int, start: int, events: list[dict[str, Any]]) -> None:
        now = utcnow()
        self.session.add_all([RasaTrackerEvent(conversation_id=conversation_id, position=start + i, event=item,
                                               created_at=now) for i, item in enumerate(events)])
        await self.session.flush()
