"""The console's view of one conversation: history with intents and delivery state, the bot's draft, notes,
and the shopper panel (identity, cart, recent orders)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels import receipts as channel_receipts
from bot.conversations import service as conversations
from bot.conversations.models import Conversation, ConversationMessage
from bot.handoff.agents import AgentRepository
from bot.handoff.delivery import DeliveryRepository, delivery_state, safe_error
from bot.handoff.inbox import thread_of_shop
from bot.handoff.learning import LearningRepository
from bot.handoff.models import Agent, AgentReply
from bot.handoff.notes import NoteRepository, NoteView
from kit.outbox import DEAD


class MessageView(BaseModel):
    id: int
    direction: str
    author: str
    kind: str
    text: str | None
    payload: str | None = None
    buttons: list[dict[str, Any]] = Field(default_factory=list)
    intent: str | None = None
    confidence: float | None = None
    policy: str | None = None  # what the bot did: answer, confirm, clarify, handoff, draft_for_agent, ...
    reason: str | None = None  # why, for a hand-off, a draft or a declined request (bot.policy.Decision.reason)
    corrected_intent: str | None = None
    agent_name: str | None = None
    delivery: str | None = None  # sending | delivered | failed (agent and system messages)
    delivery_error: str | None = None
    # What the shopper's app reported (WhatsApp: sent, delivered, read, failed), any author's message.
    delivery_status: str | None = None
    created_at: datetime


class OrderView(BaseModel):
    number: str
    status: str
    total: str
    currency: str
    created_at: datetime


class ShopperPanel(BaseModel):
    shopper_id: int | None
    name: str | None
    email: str | None
    country: str | None
    currency: str | None
    locale: str | None
    cart: list[dict[str, Any]]
    orders: list[OrderView]


class ConversationView(BaseModel):
    conversation_id: int
    channel: str
    sender_id: str
    mode: str
    status: str
    reason: str | None
    assignee_id: int | None
    assignee_name: str | None
    draft: str | None
    messages: list[MessageView]
    notes: list[NoteView]
    shopper: ShopperPanel
    canned_values: dict[str, str | None]


class ViewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def messages(self, conversation_id: int, limit: int = 500) -> list[ConversationMessage]:
        """The conversation's latest messages, oldest first."""
        rows = (await self.session.scalars(select(ConversationMessage)
                                           .where(ConversationMessage.conversation_id == conversation_id)
                                           .order_by(ConversationMessage.id.desc()).limit(limit))).all()
        return list(reversed(rows))

    async def replies_by_agent(self, message_ids: Sequence[int]) -> dict[int, tuple[AgentReply, str]]:
        if not message_ids:
            return {}
        rows = (await self.session.execute(select(AgentReply, Agent.name).join(Agent, Agent.id == AgentReply.agent_id)
                                           .where(AgentReply.message_id.in_(message_ids)))).all()
        return {row[0].message_id: (row[0], row[1]) for row in rows}


async def conversation_view(session: AsyncSession, *, agent: Agent, conversation_id: int) -> ConversationView:
    """Everything the console shows for one conversation: history with intents, the draft, notes, the shopper."""
    thread = await thread_of_shop(session, agent, conversation_id)
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    repo = ViewRepository(session)
    rows = await repo.messages(conversation_id)
    outgoing = [m.id for m in rows if m.direction == "out"]
    authors = await repo.replies_by_agent(outgoing)
    events = await DeliveryRepository(session).deliveries([f"msg:{i}" for i in outgoing if i in authors])
    receipts = await channel_receipts.delivery_statuses(session, outgoing)
    corrections = {c.message_id: c.intent for c in await LearningRepository(session).corrections(agent.shop_id)
                   if c.message_id in {m.id for m in rows}}
    messages = []
    for m in rows:
        nlu = m.nlu or {}
        intent = nlu.get("intent") if isinstance(nlu.get("intent"), dict) else None
        event = events.get(f"msg:{m.id}")
        messages.append(MessageView(
            id=m.id, direction=m.direction, author=m.author, kind=m.kind, text=m.text, payload=m.payload,
            buttons=list((m.content or {}).get("buttons") or []),
            intent=intent.get("name") if intent else None,
            confidence=float(intent["confidence"]) if intent and intent.get("confidence") is not None else None,
            policy=nlu.get("policy"), reason=nlu.get("reason"), corrected_intent=corrections.get(m.id),
            agent_name=authors[m.id][1] if m.id in authors else None,
            delivery=delivery_state(event.status) if event is not None else None,
            delivery_error=safe_error(event.last_error) if event is not None and event.status == DEAD else None,
            delivery_status=receipts.get(m.id), created_at=m.created_at))
    names = {a.id: a.name for a in await AgentRepository(session).agents_of_shop(agent.shop_id)}
    panel = await shopper_panel(session, conversation=conversation)
    order_number = panel.orders[0].number if panel.orders else None
    return ConversationView(
        conversation_id=conversation.id, channel=conversation.channel, sender_id=conversation.sender_id,
        mode=conversation.mode, status=thread.status if thread else "bot", reason=thread.reason if thread else None,
        assignee_id=thread.assignee_id if thread else None,
        assignee_name=names.get(thread.assignee_id) if thread and thread.assignee_id else None,
        draft=thread.draft_text if thread else None, messages=messages,
        notes=[NoteView(id=n.id, agent_name=name, body=n.body, created_at=n.created_at)
               for n, name in await NoteRepository(session).notes(conversation_id)],
        shopper=panel, canned_values={"name": panel.name, "order_number": order_number, "agent_name": agent.name})


async def shopper_panel(session: AsyncSession, *, conversation: Conversation) -> ShopperPanel:
    """Identity, country, currency, cart and recent orders, through the commerce services."""
    from commerce.orders import service as orders
    from commerce.shoppers import service as shoppers
    from kit.errors import NotFound

    name = email = None
    order_views: list[OrderView] = []
    country, currency, locale = conversation.country, conversation.currency, conversation.locale
    if conversation.shopper_id is not None:
        try:
            shopper = await shoppers.get_shopper(session, shopper_id=conversation.shopper_id)
        except NotFound:
            shopper = None
        if shopper is not None:
            name, email = shopper.name, shopper.email
            country, currency = country or shopper.country, currency or shopper.currency
            locale = locale or shopper.locale
        for order in await orders.orders_for_shopper(session, shopper_id=conversation.shopper_id, limit=5):
            order_views.append(OrderView(number=order.number, status=order.status, total=str(order.total),
                                         currency=order.currency, created_at=order.created_at))
    return ShopperPanel(shopper_id=conversation.shopper_id, name=name, email=email or conversation.email,
                        country=country, currency=currency, locale=locale, cart=list(conversation.cart or []),
                        orders=order_views)
