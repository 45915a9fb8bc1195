"""Merchant search controls (synonyms, boosts, buries, pins), their version, and the shopper search log."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime


class SearchSynonym(Base):
    """A group of words shoppers use for the same thing ("trainers", "sneakers", "运动鞋")."""

    __tablename__ = "search_synonyms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    terms: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SearchRule(Base):
    """Boost or bury a product (for one query, or everywhere when `query` is null), or pin it at a position."""

    __tablename__ = "search_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))  # boost | bury | pin
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    query: Mapped[str | None] = mapped_column(String(200), default=None, index=True)  # normalised
    position: Mapped[int] = mapped_column(Integer, default=1)  # pins: 1 = first
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SearchSettingsVersion(Base):
    """One row, bumped by every merchant change; searches re-read the controls when it moves."""

    __tablename__ = "search_settings_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class SearchLogEntry(Base):
    """One shopper search: what was asked, in which language and channel, how many results, and if used."""

    __tablename__ = "search_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    query: Mapped[str] = mapped_column(String(200))
    normalised: Mapped[str] = mapped_column(String(200), index=True)
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(32))
    result_count: Mapped[int] = mapped_column(Integer)
    clicked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
