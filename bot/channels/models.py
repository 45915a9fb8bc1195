from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class PayloadToken(Base):
    """A button payload too long for the channel's button id (Telegram's 64-byte callback_data, WhatsApp's
    256/200-character reply and row ids), kept server-side under a short token. Shared by the channels: the token
    is a hash of the payload, so one payload has one token whichever channel showed it."""

    __tablename__ = "bot_channel_payload_tokens"

    token: Mapped[str] = mapped_column(String(24), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelReceipt(Base):
    """What a channel reported about one message it accepted from us (WhatsApp: sent, delivered, read, failed)."""

    __tablename__ = "bot_channel_receipts"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))  # the channel's id of the sent message (wamid)
    message_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)  # our bot_messages id
    recipient_id: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelContact(Base):
    """When a shopper last wrote on a channel: WhatsApp's 24-hour customer-service window opens from it."""

    __tablename__ = "bot_channel_contacts"

    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_inbound_at: Mapped[datetime] = mapped_column(UTCDateTime)
class WebchatSite(Base):
    """A storefront that embeds the web chat: the origins allowed to frame it and the secret its server signs
    logged-in customers' ids with (identity verification)."""

    __tablename__ = "bot_webchat_sites"

    shop: Mapped[str] = mapped_column(String(64), primary_key=True)  # the snippet's data-shop
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    identity_secret: Mapped[str | None] = mapped_column(String(128), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelMedia(Base):
    """A file a shopper sent on a channel (WhatsApp media, a WeChat picture), fetched from the platform in the
    background and kept here as a blob: every API process serves it with no shared disk, and it goes with the
    database's backups. `media_key` is the platform's media id; `status` pending -> stored, or failed (why in
    `error`: too large, checksum mismatch, the platform refused)."""

    __tablename__ = "bot_channel_media"
    __table_args__ = (UniqueConstraint("channel", "media_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    media_key: Mapped[str] = mapped_column(String(200))
    sender_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # image, document, audio, video, voice, ...
    status: Mapped[str] = mapped_column(String(16))
    mime_type: Mapped[str | None] = mapped_column(String(128), default=None)
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    declared_sha256: Mapped[str | None] = mapped_column(String(128), default=None)  # as the webhook gave it
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)  # hex, of the bytes stored
    size: Mapped[int | None] = mapped_column(Integer, default=None)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class WhatsAppTemplate(Base):
    """A message template the merchant registered (approved by Meta): the only thing that may go to a shopper
    outside WhatsApp's 24-hour window. `parameter_count`: the body's {{1}}..{{n}} placeholders."""

    __tablename__ = "bot_whatsapp_templates"

    name: Mapped[str] = mapped_column(String(512), primary_key=True)
    language: Mapped[str] = mapped_column(String(16))
    parameter_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
