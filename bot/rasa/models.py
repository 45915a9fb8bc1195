from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class RasaAssistant(Base):
    """An imported Rasa project: its YAML files as imported; the active one answers shoppers."""

    __tablename__ = "bot_rasa_assistants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    files: Mapped[dict[str, str]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    nlu_version: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RasaTrackerEvent(Base):
    """One Rasa event of a conversation (the tracker store), in order."""

    __tablename__ = "bot_rasa_events"
    # The unique constraint's index also serves reading a conversation's events in order.
    __table_args__ = (UniqueConstraint("conversation_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("bot_conversations.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
