from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
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
    # connector: none, webhook, shopify; allocation: shared, buffer, share.
    connector: Mapped[str] = mapped_column(String(20), default="none", server_default="none")
    allocation: Mapped[str] = mapped_column(String(10), default="shared", server_default="shared")
    # Units held back (buffer) or percent of the pool shown (share); unused for shared.
    allocation_value: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    safety_stock: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ChannelSyncState(Base):
    """Where pulling and reconciling a channel stands."""

    __tablename__ = "channel_sync_states"

    channel_id: Mapped[int] = mapped_column(ForeignKey("sales_channels.id", ondelete="CASCADE"), primary_key=True)
    order_cursor: Mapped[str | None] = mapped_column(String(200), default=None)
    last_pull_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_pull_error: Mapped[str | None] = mapped_column(Text, default=None)
    orders_imported: Mapped[int] = mapped_column(Integer, default=0)
    last_reconciled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ChannelOrderRejection(Base):
    """A channel order the core could not take (usually: the channel sold stock we no longer had)."""

    __tablename__ = "channel_order_rejections"
    __table_args__ = (UniqueConstraint("channel_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("sales_channels.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(120))
    code: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelReconciliation(Base):
    """One comparison of a channel's stock with ours, and what was repaired."""

    __tablename__ = "channel_reconciliations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("sales_channels.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    checked: Mapped[int] = mapped_column(Integer, default=0)
    drifted: Mapped[int] = mapped_column(Integer, default=0)
    repaired: Mapped[int] = mapped_column(Integer, default=0)
    # Up to 100 {sku, ours, theirs} rows, so the merchant sees what was off.
    drift: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text, default=None)
