"""How an agent's (or the console's system) message reaches the shopper: stored, queued on the conversation's
channel through the outbox, attributed to the agent; and the delivery state the console shows for each."""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversations import service as conversations
from bot.conversations.models import Conversation, ConversationMessage
from bot.handoff.models import AgentReply
from bot.messages import Button, OutboundMessage, ProductCard
from kit.clock import utcnow
from kit.outbox import DEAD, DELIVERED, SUPERSEDED, OutboxEvent, enqueue


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def last_inbound(self, conversation_id: int) -> ConversationMessage | None:
        return await self.session.scalar(select(ConversationMessage).where(
            ConversationMessage.conversation_id == conversation_id, ConversationMessage.direction == "in")
            .order_by(ConversationMessage.id.desc()).limit(1))

    async def deliveries(self, keys: Sequence[str]) -> dict[str, OutboxEvent]:
        if not keys:
            return {}
        rows = (await self.session.scalars(select(OutboxEvent).where(OutboxEvent.idempotency_key.in_(keys)))).all()
        return {row.idempotency_key: row for row in rows}


async def send(session: AsyncSession, *, conversation: Conversation, agent_id: int, source: str, text: str,
               author: Literal["agent", "system"] = "agent", buttons: list[Button] | None = None,
               cards: list[ProductCard] | None = None, custom: dict[str, Any] | None = None) -> int:
    """Store the message as the conversation's reply and queue it on `send.<channel>`; returns its id."""
    last_in = await DeliveryRepository(session).last_inbound(conversation.id)
    reply = OutboundMessage(channel=conversation.channel, recipient_id=conversation.sender_id,
                            text=text, buttons=buttons or [], cards=cards or [], custom=custom, author=author)
    saved = await conversations.record_outbound(session, conversation=conversation, reply=reply,
                                                in_reply_to=last_in.id if last_in else None)
    assert saved.message_id is not None
    # The channels' outbox worker delivers it to the shopper's own channel; the key makes it exactly-once.
    await enqueue(session, topic=f"send.{conversation.channel}", payload=saved.model_dump(mode="json"),
                  idempotency_key=f"msg:{saved.message_id}")
    session.add(AgentReply(message_id=saved.message_id, conversation_id=conversation.id, agent_id=agent_id,
                           source=source, created_at=utcnow()))
    conversation.updated_at = utcnow()
    await session.flush()
    return saved.message_id


def delivery_state(status: str | None) -> str | None:
    """The console's word for an outbox state: sending, delivered, failed or superseded."""
    if status is None:
        return None
    if status == DELIVERED:
        return "delivered"
    if status == DEAD:
        return "failed"
    if status == SUPERSEDED:
        return "superseded"
    return "sending"


def safe_error(error: str | None) -> str:
    # Only the peer's refusal reason; never anything that could carry a token or URL.
    text = (error or "delivery failed").splitlines()[0][:200]
    text = re.sub(r"^[A-Za-z_.]*Error: ", "", text)  # the outbox prefixes the exception class
    return re.sub(r"\d{6,}:[A-Za-z0-9_-]{20,}", "[token]", text)
