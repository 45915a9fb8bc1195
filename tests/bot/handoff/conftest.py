"""Helpers for the handoff tests: agents and shopper conversations made through the real services."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot import handoff
from bot.conversations import service as conversations
from bot.handoff.models import Agent
from bot.messages import InboundMessage
from kit.db import Database

PASSWORD = "correct horse battery"


async def make_agent(db: Database, email: str, *, role: str = "agent", shop_id: int = 1,
                     capacity: int = 3, online: bool = False) -> int:
    async with db.unit_of_work() as session:
        agent = await handoff.agents.create_agent(session, email=email, name=email.split("@")[0].title(), role=role,
                                                  password=PASSWORD, shop_id=shop_id, capacity=capacity)
        if online:
            await handoff.agents.check_in(session, agent_id=agent.id)
        return agent.id


async def load_agent(session: AsyncSession, agent_id: int) -> Agent:
    agent = await session.get(Agent, agent_id)
    assert agent is not None
    return agent


async def shopper_says(db: Database, text: str, *, channel: str = "webchat", sender: str = "shopper-1",
                       message_id: str | None = None, human: bool = False, payload: str | None = None) -> int:
    """A stored shopper message (as the engine stores it); optionally the conversation is handed to a person."""
    async with db.unit_of_work() as session:
        conversation = await conversations.get_or_create_conversation(session, channel=channel, sender_id=sender)
        inbound = InboundMessage(channel=channel, sender_id=sender,
                                 message_id=message_id or f"{sender}:{text}:{payload}", text=text,
                                 payload=payload, kind="callback" if payload else "text")
        await conversations.record_inbound(session, conversation=conversation, inbound=inbound,
                                           nlu={"intent": {"name": "human_handoff", "confidence": 0.91},
                                                "policy": "handoff"})
        if human:
            await conversations.set_mode(session, conversation_id=conversation.id, mode="human", queue="support")
        return conversation.id
