from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class SalesChannel(Base):
    """Somewhere the shop sells: its web shop, a chat channel, a marketplace."""

    __tablename__ = "sales_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))  # web, telegram, marketplace, webchat, rest
    sync_mode: Mapped[str] = mapped_column(String(12), default="push")  # push, pull, push_pull, direct
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
