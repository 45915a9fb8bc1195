"""An agent typing in the console: who may say so for a conversation (the agent who has it, or a supervisor) and
where it goes (the shopper's channel and id, and the name the shopper sees). Nothing is stored: typing is a live
signal the console sends at most every couple of seconds while the reply box has text, and once more to stop."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations.models import Conversation
from bot.handoff.errors import ThreadNotFound
from bot.handoff.inbox import require_owner, thread_of_shop
from bot.handoff.models import Agent


@dataclass(frozen=True)
class TypingTarget:
    channel: str
    recipient_id: str
    agent_name: str


async def typing_target(session: AsyncSession, *, agent: Agent, conversation_id: int) -> TypingTarget:
    """Where the agent's typing signal goes; refused (as a reply would be) unless the agent may answer."""
    require_owner(agent, await thread_of_shop(session, agent, conversation_id), supervisor_may=True)
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise ThreadNotFound(f"No conversation {conversation_id}.")
    return TypingTarget(channel=conversation.channel, recipient_id=conversation.sender_id, agent_name=agent.name)
