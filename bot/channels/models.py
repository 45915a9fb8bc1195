from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class TelegramCallbackToken(Base):
    """A button payload too long for Telegram's 64-byte callback_data, kept server-side under a short token."""

    __tablename__ = "bot_telegram_callback_tokens"

    token: Mapped[str] = mapped_column(String(24), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebchatSite(Base):
    """A storefront that embeds the web chat: the origins allowed to frame it and the secret its server signs
    logged-in customers' ids with (identity verification)."""

    __tablename__ = "bot_webchat_sites"

    shop: Mapped[str] = mapped_column(String(64), primary_key=True)  # the snippet's data-shop
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    identity_secret: Mapped[str | None] = mapped_column(String(128), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
