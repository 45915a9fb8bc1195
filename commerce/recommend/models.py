from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime

OUTCOME_KINDS = ("click", "add_to_cart", "purchase")


class RecommendationImpression(Base):
    """One recommendation shown to a shopper: which model put it there, on which channel."""

    __tablename__ = "recommendation_impressions"
    __table_args__ = (Index("ix_recommendation_impressions_model_shown_at", "model", "shown_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(40))
    sku: Mapped[str] = mapped_column(String(64), index=True)
    product_id: Mapped[int | None] = mapped_column(Integer, default=None)
    shopper_id: Mapped[int | None] = mapped_column(ForeignKey("shoppers.id", ondelete="SET NULL"), default=None,
                                                   index=True)
    channel: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(300), default=None)
    shown_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RecommendationOutcome(Base):
    """What the shopper did with a shown recommendation; one row per kind, so repeats are idempotent."""

    __tablename__ = "recommendation_outcomes"
    __table_args__ = (
        UniqueConstraint("impression_id", "kind"),
        CheckConstraint("kind IN ('click', 'add_to_cart', 'purchase')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    impression_id: Mapped[int] = mapped_column(
        ForeignKey("recommendation_impressions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), default=None)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
