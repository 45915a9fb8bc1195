from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class Conversation(Base):
    """What the bot remembers about one shopper on one channel."""

    __tablename__ = "bot_conversations"
    __table_args__ = (UniqueConstraint("channel", "sender_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    sender_id: Mapped[str] = mapped_column(String(200))
    shopper_id: Mapped[int | None] = mapped_column(ForeignKey("shoppers.id", ondelete="SET NULL"), default=None,
                                                   index=True)
    locale: Mapped[str | None] = mapped_column(String(10), default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    postcode: Mapped[str | None] = mapped_column(String(20), default=None)
    # The delivery service chosen at checkout (a shipping zone's service code); None: the zone's default.
    shipping_service: Mapped[str | None] = mapped_column(String(40), default=None)
    mode: Mapped[str] = mapped_column(String(10), default="bot")  # bot | human
    queue: Mapped[str | None] = mapped_column(String(40), default=None)  # agent queue while mode is human
    cart: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{"sku", "quantity"}]
    last_products: Mapped[list[int]] = mapped_column(JSON, default=list)  # product ids last shown
    last_search: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    pending: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # question in flight
    # Orders proven owned (e-mail or postcode), [{"number", "at": ISO time}]; a bare number (written before proofs
    # carried their time) counts as proven long ago: expired. Read through service.verified_order.
    verified_orders: Mapped[list[dict[str, str] | str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConversationMessage(Base):
    """One inbound or outbound message, stored raw (channels escape on rendering)."""

    __tablename__ = "bot_messages"
    __table_args__ = (
        # Per conversation: another sender reusing a message id is a new message, never a repeat of this one.
        UniqueConstraint("conversation_id", "external_id"),
        Index("ix_bot_messages_conversation_id_id", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("bot_conversations.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str | None] = mapped_column(String(200), default=None)  # channel's id of an inbound
    kind: Mapped[str] = mapped_column(String(20), default="text")
    author: Mapped[str] = mapped_column(String(10))  # shopper | bot | agent | system
    text: Mapped[str | None] = mapped_column(Text, default=None)
    payload: Mapped[str | None] = mapped_column(Text, default=None)
    nlu: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # buttons, cards, custom
    in_reply_to: Mapped[int | None] = mapped_column(ForeignKey("bot_messages.id"), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VerificationAttempt(Base):
    """An attempt to prove ownership of an order; failures back off per conversation and per order named."""

    __tablename__ = "bot_verification_attempts"
    __table_args__ = (Index("ix_bot_verification_conv_time", "conversation_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("bot_conversations.id", ondelete="CASCADE"))
    # The order number or public reference tried, so guesses spread over many chat sessions are limited too.
    order_number: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
