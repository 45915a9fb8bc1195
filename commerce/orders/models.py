from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commerce.orders.refs import new_public_ref
from kit.db import Base, UTCDateTime, money_column_type


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("channel_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    # Unguessable ST-XXXXX-XXXXX shown to the shopper (numbers are sequential); see commerce/orders/refs.py.
    public_ref: Mapped[str] = mapped_column(String(16), unique=True, default=new_public_ref)
    channel_id: Mapped[int] = mapped_column(ForeignKey("sales_channels.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(120))
    shopper_id: Mapped[int | None] = mapped_column(ForeignKey("shoppers.id"), default=None, index=True)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    postcode: Mapped[str | None] = mapped_column(String(20), default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(money_column_type())
    shipping: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))
    # The delivery service the shopper chose (a shipping zone's service code: standard, express...); None = not said.
    shipping_service: Mapped[str | None] = mapped_column(String(40), default=None)
    duties: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))
    taxes: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))
    insurance: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))
    fees: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))
    # What the carrier collects on delivery (DAP duties/taxes/fees): stored apart, never part of `total`.
    due_on_delivery: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))
    incoterm: Mapped[str | None] = mapped_column(String(3), default=None)  # DDP / DAP; None: no landed-cost quote
    # `total` is what the shopper is charged (pay now), in `currency`, at the currency's minor unit.
    total: Mapped[Decimal] = mapped_column(money_column_type())
    # The exchange rates used for the prices: [{"from", "to", "rate", "as_of", "markup_percent"}].
    exchange_rates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    recipient: Mapped[str | None] = mapped_column(String(120), default=None)
    phone: Mapped[str | None] = mapped_column(String(40), default=None)
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # validated, normalised
    summary_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None, index=True)
    amount_paid: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))
    amount_refunded: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))
    # Set when a person must look (a payment whose amount or currency differs from the order); None: fine.
    attention: Mapped[str | None] = mapped_column(String(300), default=None)
    status: Mapped[str] = mapped_column(String(20), index=True)
    carrier: Mapped[str | None] = mapped_column(String(60), default=None)
    tracking_number: Mapped[str | None] = mapped_column(String(80), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    lines: Mapped[list[OrderLine]] = relationship(lazy="raise", order_by="OrderLine.id",
                                                  cascade="all, delete-orphan")
    history: Mapped[list[OrderStatusChange]] = relationship(lazy="raise", order_by="OrderStatusChange.id",
                                                            cascade="all, delete-orphan")


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(money_column_type())
    line_total: Mapped[Decimal] = mapped_column(money_column_type())
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"), default=None)


class OrderStatusChange(Base):
    __tablename__ = "order_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20), default=None)
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text, default=None)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
