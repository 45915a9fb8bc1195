"""The console's view of one conversation: history with intents and delivery state, the bot's draft, notes,
and the shopper panel (identity, cart, recent orders)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import i18n
from bot.channels import media as channel_media
from bot.channels import receipts as channel_receipts
from bot.channels.source import telegram_start
from bot.conversations import service as conversations
from bot.conversations.models import Conversation, ConversationMessage
from bot.handoff.agents import AgentRepository
from bot.handoff.delivery import DeliveryRepository, delivery_state, safe_error
from bot.handoff.inbox import thread_of_shop
from bot.handoff.learning import LearningRepository
from bot.handoff.models import Agent, AgentReply, ThreadEvent
from bot.handoff.notes import NoteRepository, NoteView
from commerce.money import format_money
from commerce.orders.models import Order
from kit.outbox import DEAD

UNPAID_STATUSES = frozenset({"pending_payment", "cancelled"})
_SHIPPED = frozenset({"fulfilled", "shipped"})


def order_facets(order: Order) -> tuple[str, str, str]:
    """The order's state, its payment and its fulfilment, each said once (an order's status names only one of
    them: "paid" is a payment, "shipped" a fulfilment): codes the console words by the agent's catalog
    (`console.order_state_*`, `console.payment_state_*`, `console.fulfilment_*`)."""
    state = {"delivered": "completed", "cancelled": "cancelled", "expired": "expired",
             "refunded": "closed"}.get(order.status, "open")
    if order.status == "pending_payment":
        payment = "awaiting"
    elif order.amount_paid <= 0:
        payment = "not_paid"
    elif order.amount_refunded >= order.amount_paid:
        payment = "refunded"
    elif order.amount_refunded > 0:
        payment = "partly_refunded"
    else:
        payment = "paid"
    if order.status in _SHIPPED or (order.status == "refunded" and order.tracking_number):
        fulfilment = "shipped"
    elif order.status in ("packed", "delivered", "return_requested"):
        fulfilment = order.status
    else:
        fulfilment = "not_shipped"
    return state, payment, fulfilment


class MessageView(BaseModel):
    id: int
    direction: str
    author: str
    kind: str
    text: str | None
    payload: str | None = None
    buttons: list[dict[str, Any]] = Field(default_factory=list)
    # What else the shopper saw, from the stored payload: product cards and the skill's custom data (an order's
    # number, total and currency; a landed-cost quote; ...).
    cards: list[dict[str, Any]] = Field(default_factory=list)
    custom: dict[str, Any] | None = None
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
    # A file the shopper sent (bot.channels.media): kind, status, mime_type, filename, size, inline, url.
    media: dict[str, Any] | None = None


class OrderView(BaseModel):
    number: str
    status: str
    paid: bool  # money was taken (and not all given back): False while pending_payment, cancelled or expired unpaid
    total: str
    currency: str
    total_text: str  # formatted by the agent's locale (babel): "$161.85", "US$161.85", "161,85 $US"
    created_at: datetime
    # Payments (issue 23): what was paid and refunded, the refunds ("€12.00 · too small"), what is left to refund
    # ("" when nothing can be refunded), and the id the console's refund action posts to.
    order_id: int = 0
    paid_text: str = ""
    refunded_text: str = ""
    refunds: list[str] = Field(default_factory=list)
    refundable_text: str = ""
    # The order line's three facets, each shown once (order_facets): order_state, payment_state, fulfilment.
    order_state: str = "open"
    payment_state: str = "awaiting"
    fulfilment: str = "not_shipped"


class TimelineEvent(BaseModel):
    """Who did what: escalated (detail = why), taken, assigned, transferred, handed_back, resolved."""

    id: int
    kind: str
    agent_name: str | None
    target_agent_name: str | None
    detail: str | None
    created_at: datetime


class ShopperPanel(BaseModel):
    shopper_id: int | None
    display_name: str  # the name, else the e-mail, else "<Channel> shopper <short id>": never a bare hex id
    name: str | None
    email: str | None
    channel: str
    country_name: str | None = None
    country: str | None
    currency: str | None
    locale: str | None
    cart: list[dict[str, Any]]
    orders: list[OrderView]
    # Where they came from: landing_page, referrer, utm_source/medium/campaign (web chat), start_parameter (Telegram).
    came_from: dict[str, str] | None = None


class ReplyWindow(BaseModel):
    """WhatsApp's customer-service window: free text only while open; else a registered template."""

    open: bool
    closes_at: datetime | None
    templates: list[str]


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
    draft_cards: list[dict[str, Any]] = Field(default_factory=list)  # sent with the draft when approved
    draft_buttons: list[dict[str, Any]] = Field(default_factory=list)
    messages: list[MessageView]
    notes: list[NoteView]
    events: list[TimelineEvent] = Field(default_factory=list)
    last_message_id: int = 0
    shopper: ShopperPanel
    canned_values: dict[str, str | None]
    reply_window: ReplyWindow | None = None  # WhatsApp conversations: in the view, not one more request per reload


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

    async def events(self, conversation_id: int, limit: int = 200) -> list[ThreadEvent]:
        rows = (await self.session.scalars(select(ThreadEvent).where(ThreadEvent.conversation_id == conversation_id)
                                           .order_by(ThreadEvent.id.desc()).limit(limit))).all()
        return list(reversed(rows))


async def conversation_view(session: AsyncSession, *, agent: Agent, conversation_id: int,
                            locale: str = "en") -> ConversationView:
    """Everything the console shows for one conversation: history with intents and what each message showed
    (cards, buttons, order summaries), the draft, notes, who did what, and the shopper (money in `locale`)."""
    thread = await thread_of_shop(session, agent, conversation_id)
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    repo = ViewRepository(session)
    rows = await repo.messages(conversation_id)
    outgoing = [m.id for m in rows if m.direction == "out"]
    authors = await repo.replies_by_agent(outgoing)
    events = await DeliveryRepository(session).deliveries([f"msg:{i}" for i in outgoing if i in authors])
    receipts = await channel_receipts.delivery_statuses(session, outgoing)
    files = await channel_media.media_views(session, conversation_id=conversation_id, channel=conversation.channel,
                                            messages=[(m.id, m.content) for m in rows if m.direction == "in"])
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
            cards=list((m.content or {}).get("cards") or []), custom=(m.content or {}).get("custom") or None,
            intent=intent.get("name") if intent else None,
            confidence=float(intent["confidence"]) if intent and intent.get("confidence") is not None else None,
            policy=nlu.get("policy"), reason=nlu.get("reason"), corrected_intent=corrections.get(m.id),
            agent_name=authors[m.id][1] if m.id in authors else None,
            delivery=delivery_state(event.status) if event is not None else None,
            delivery_error=safe_error(event.last_error) if event is not None and event.status == DEAD else None,
            delivery_status=receipts.get(m.id), created_at=m.created_at, media=files.get(m.id)))
    names = {a.id: a.name for a in await AgentRepository(session).agents_of_shop(agent.shop_id)}
    panel = await shopper_panel(session, conversation=conversation, agent_locale=locale)
    panel.came_from = came_from(rows)
    timeline = [TimelineEvent(id=e.id, kind=e.kind, agent_name=names.get(e.agent_id or 0),
                              target_agent_name=names.get(e.target_agent_id or 0), detail=e.detail,
                              created_at=e.created_at) for e in await repo.events(conversation_id)]
    draft_cards: list[dict[str, Any]] = []
    draft_buttons: list[dict[str, Any]] = []
    for held in (thread.draft_content or []) if thread and thread.draft_text is not None else []:
        draft_cards.extend(held.get("cards") or [])
        draft_buttons.extend(held.get("buttons") or [])
    return ConversationView(
        conversation_id=conversation.id, channel=conversation.channel, sender_id=conversation.sender_id,
        mode=conversation.mode, status=thread.status if thread else "bot", reason=thread.reason if thread else None,
        assignee_id=thread.assignee_id if thread else None,
        assignee_name=names.get(thread.assignee_id) if thread and thread.assignee_id else None,
        draft=thread.draft_text if thread else None, draft_cards=draft_cards, draft_buttons=draft_buttons,
        messages=messages, events=timeline, last_message_id=rows[-1].id if rows else 0,
        notes=[NoteView(id=n.id, agent_name=name, body=n.body, created_at=n.created_at)
               for n, name in await NoteRepository(session).notes(conversation_id)],
        shopper=panel, canned_values=canned_values(panel, agent))


def came_from(rows: Sequence[ConversationMessage]) -> dict[str, str] | None:
    """What the conversation's earliest shopper message says about where they came from."""
    for m in rows:
        if m.direction != "in":
            continue
        source = ((m.content or {}).get("metadata") or {}).get("source")
        if isinstance(source, dict) and source:
            return {str(k): str(v) for k, v in source.items()}
        start = telegram_start(m.text) or telegram_start(m.payload)
        if start is not None:
            return start
    return None


def canned_values(panel: ShopperPanel, agent: Agent) -> dict[str, str | None]:
    """What canned variables are filled with in this conversation (None: unknown here, the agent must fill it)."""
    latest = panel.orders[0] if panel.orders else None
    first_name = panel.name.split()[0] if panel.name and panel.name.split() else None
    return {"name": panel.name, "first_name": first_name, "email": panel.email,
            "order_number": latest.number if latest else None, "order_total": latest.total_text if latest else None,
            "order_status": latest.status if latest else None, "agent_name": agent.name,
            "agent_first_name": agent.name.split()[0] if agent.name.split() else agent.name}


def agent_locale(value: str | None) -> str:
    """The agent's language tag (from the browser) as a babel locale; anything unknown is English."""
    from babel import Locale, UnknownLocaleError

    if not value or len(value) > 35:
        return "en"
    candidate = value.replace("-", "_")
    try:
        Locale.parse(candidate)
    except (UnknownLocaleError, ValueError, TypeError):
        return "en"
    return candidate


def display_name(*, name: str | None, email: str | None, channel: str, sender_id: str) -> str:
    if name:
        return name
    if email:
        return email
    return f"{channel.title()} shopper {sender_id[-6:]}"


async def _order_view(session: AsyncSession, order: Order, agent_locale: str) -> OrderView:
    from commerce.payments import service as payments

    def money(amount: Decimal) -> str:
        return format_money(amount, order.currency, agent_locale)

    _, paid, refunds = await payments.payment_state(session, order_id=order.id)
    left = sum((p.amount - p.amount_refunded for p in paid if p.status == "succeeded"), Decimal(0))
    order_state, payment_state, fulfilment = order_facets(order)
    return OrderView(order_state=order_state, payment_state=payment_state, fulfilment=fulfilment,
                     number=order.number, status=order.status, paid=payment_state in ("paid", "partly_refunded"),
                     total=str(order.total), currency=order.currency, created_at=order.created_at,
                     total_text=money(order.total), order_id=order.id, paid_text=money(order.amount_paid),
                     refunded_text=money(order.amount_refunded) if order.amount_refunded else "",
                     refunds=[money(r.amount) + (f" · {r.reason}" if r.reason else "") for r in refunds],
                     refundable_text=money(left) if left > 0 and order.status in payments.REFUNDABLE else "")


async def shopper_panel(session: AsyncSession, *, conversation: Conversation,
                        agent_locale: str = "en") -> ShopperPanel:
    """Identity, country, currency, cart and recent orders, through the commerce services (money and the country's
    name written the agent's way, `agent_locale`)."""
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
            order_views.append(await _order_view(session, order, agent_locale))
    email = email or conversation.email
    return ShopperPanel(shopper_id=conversation.shopper_id, name=name, email=email, channel=conversation.channel,
                        display_name=display_name(name=name, email=email, channel=conversation.channel,
                                                  sender_id=conversation.sender_id),
                        country_name=i18n.country_name(agent_locale, country) if country else None,
                        country=country, currency=currency, locale=locale, cart=list(conversation.cart or []),
                        orders=order_views)


async def conversation_values(session: AsyncSession, *, agent: Agent, conversation_id: int,
                              locale: str = "en") -> dict[str, str | None]:
    """The canned-response variables of one conversation (for the filled preview)."""
    await thread_of_shop(session, agent, conversation_id)
    conversation = await conversations.get_conversation(session, conversation_id=conversation_id)
    return canned_values(await shopper_panel(session, conversation=conversation, agent_locale=locale), agent)
