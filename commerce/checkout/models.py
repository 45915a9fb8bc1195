from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class DeliveryAddress(Base):
    """A validated address a shopper gave; the newest per owner is offered again ("same as last time?")."""

    __tablename__ = "delivery_addresses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Who gave it: "<channel>:<sender id>" of the chat, so a returning chat shopper finds it without an account.
    owner: Mapped[str] = mapped_column(String(240), index=True)
    shopper_id: Mapped[int | None] = mapped_column(ForeignKey("shoppers.id", ondelete="SET NULL"), default=None,
                                                   index=True)
    country: Mapped[str] = mapped_column(String(2))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)  # commerce.checkout.schemas.Address as JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
