"""What the shopper is told at the moment a person takes their conversation or gives it back to the bot:
"Anna joined the chat" / "You're chatting with the assistant again", in the shopper's language, as a system
message through the outbox on their own channel (a system line in the web chat, a short text elsewhere).

Called only where the inbox's conditional UPDATE won (take, assign, round-robin, hand back, resolve), so a
double click that loses the race sends nothing twice."""
from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from bot import i18n
from bot.conversations.models import Conversation
from bot.handoff.delivery import send

Notice = Literal["joined", "returned"]


async def tell_shopper(session: AsyncSession, *, conversation: Conversation, notice: Notice, agent_id: int,
                       agent_name: str) -> int:
    """Store and queue the notice; returns its message id. The web chat reads `custom.notice` to draw a line."""
    key = "handoff_notice_joined" if notice == "joined" else "handoff_notice_returned"
    return await send(session, conversation=conversation, agent_id=agent_id, source="notice",
                      author="system", text=i18n.t(conversation.locale, key, name=agent_name),
                      custom={"notice": notice, "agent_name": agent_name})
