from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class Shopper(Base):
    __tablename__ = "shoppers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    email: Mapped[str | None] = mapped_column(String(254), default=None, index=True)
    locale: Mapped[str | None] = mapped_column(String(10), default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ShopperIdentity(Base):
    """One way to reach a shopper: a Telegram user, a web chat session, an e-mail address."""

    __tablename__ = "shopper_identities"
    __table_args__ = (UniqueConstraint("kind", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shopper_id: Mapped[int] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # telegram, webchat, rest, email
    external_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
