from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class TelegramCallbackToken(Base):
    """A button payload too long for Telegram's 64-byte callback_data, kept server-side under a short token."""

    __tablename__ = "bot_telegram_callback_tokens"

    token: Mapped[str] = mapped_column(String(24), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
