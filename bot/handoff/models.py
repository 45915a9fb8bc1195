"""Human agents: accounts, console sessions, who handles which conversation, and what they taught the bot."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime

DEFAULT_SHOP_ID = 1  # conversations carry no shop yet: the demo is one shop


class Agent(Base):
    """A person who answers shoppers in the console; sees only their own shop."""

    __tablename__ = "handoff_agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[int] = mapped_column(Integer, default=DEFAULT_SHOP_ID, index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))  # agent | supervisor
    password_hash: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer, default=3)  # open conversations before round-robin skips them
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgentSession(Base):
    """A console login; only the SHA-256 of the cookie value is stored."""

    __tablename__ = "handoff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("handoff_agents.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class HandoffThread(Base):
    """A conversation as the agent inbox sees it: open or resolved, and who owns it (at most one agent)."""

    __tablename__ = "handoff_threads"
    __table_args__ = (Index("ix_handoff_threads_shop_status", "shop_id", "status", "opened_at"),)

    conversation_id: Mapped[int] = mapped_column(ForeignKey("bot_conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    shop_id: Mapped[int] = mapped_column(Integer, default=DEFAULT_SHOP_ID)
    status: Mapped[str] = mapped_column(String(10))  # open | resolved
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_agents.id", ondelete="SET NULL"),
                                                    default=None, index=True)
    reason: Mapped[str | None] = mapped_column(String(40), default=None)  # what escalated it
    draft_text: Mapped[str | None] = mapped_column(Text, default=None)  # the bot's reply waiting for an agent
    draft_for_message_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # The held replies as the shopper would have seen them: [{text, buttons, cards, custom}, ...]
    draft_content: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    resolved_by: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgentReply(Base):
    """Which agent wrote a stored outbound message, and whether it was the bot's draft."""

    __tablename__ = "handoff_replies"

    message_id: Mapped[int] = mapped_column(ForeignKey("bot_messages.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("bot_conversations.id", ondelete="CASCADE"),
                                                 index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("handoff_agents.id", ondelete="CASCADE"))
    # own | draft | draft_edited | csat | notice | cart_link (32: a longer source must fail on neither backend)
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CannedResponse(Base):
    """A saved answer with variables ({name}, {order_number}) an agent inserts by shortcut."""

    __tablename__ = "handoff_canned_responses"
    __table_args__ = (UniqueConstraint("shop_id", "shortcut"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[int] = mapped_column(Integer, default=DEFAULT_SHOP_ID)
    shortcut: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PrivateNote(Base):
    """A note between agents on a conversation; the shopper never sees it."""

    __tablename__ = "handoff_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("bot_conversations.id", ondelete="CASCADE"),
                                                 index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("handoff_agents.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CsatSurvey(Base):
    """The satisfaction question sent on resolve, and the shopper's 1-5 answer."""

    __tablename__ = "handoff_csat"
    __table_args__ = (Index("ix_handoff_csat_conversation", "conversation_id", "asked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[int] = mapped_column(Integer, default=DEFAULT_SHOP_ID)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("bot_conversations.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_agents.id", ondelete="SET NULL"), index=True)
    score: Mapped[int | None] = mapped_column(Integer, default=None)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class IntentCorrection(Base):
    """An agent's fix of the intent the NLU gave a shopper message; becomes a training example."""

    __tablename__ = "handoff_intent_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[int] = mapped_column(Integer, default=DEFAULT_SHOP_ID)
    message_id: Mapped[int] = mapped_column(ForeignKey("bot_messages.id", ondelete="CASCADE"), unique=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_agents.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    predicted_intent: Mapped[str | None] = mapped_column(String(80), default=None)
    intent: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FaqDraftFromAgent(Base):
    """An agent's answer saved as a draft FAQ entry for the merchant to publish."""

    __tablename__ = "handoff_faq_drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[int] = mapped_column(Integer, default=DEFAULT_SHOP_ID)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_agents.id", ondelete="SET NULL"))
    faq_entry_id: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ShopHandoffRules(Base):
    """Per-shop escalation triggers, mixed-reply choices and opening hours (validated by EscalationRules)."""

    __tablename__ = "handoff_shop_rules"

    shop_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConversationRead(Base):
    """How far an agent has read a conversation (unread = shopper messages after it)."""

    __tablename__ = "handoff_reads"

    agent_id: Mapped[int] = mapped_column(ForeignKey("handoff_agents.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("bot_conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    last_read_message_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ThreadEvent(Base):
    """Who did what to a conversation in the inbox: escalated, taken, assigned, transferred, handed back, resolved."""

    __tablename__ = "handoff_events"
    __table_args__ = (Index("ix_handoff_events_conversation_id_id", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("bot_conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_agents.id", ondelete="SET NULL"), default=None)
    target_agent_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_agents.id", ondelete="SET NULL"),
                                                        default=None)
    detail: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CartLink(Base):
    """A cart an agent built in the reply box and sent to the shopper: the lines, who sent it, until when it can be
    opened, and when it was (once: `redeemed_at` is set by one conditional UPDATE)."""

    __tablename__ = "handoff_cart_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("bot_conversations.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_agents.id", ondelete="SET NULL"), default=None)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"sku", "quantity"}]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
