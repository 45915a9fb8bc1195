from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import Base, UTCDateTime, money_column_type


class PaymentMethod(Base):
    """A provider the merchant offers for a destination country and chat channel ('*' = any)."""

    __tablename__ = "payment_methods"
    __table_args__ = (UniqueConstraint("country", "channel", "provider"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166 alpha-2, or "*"
    channel: Mapped[str] = mapped_column(String(20))  # telegram / webchat / rest, or "*"
    provider: Mapped[str] = mapped_column(String(20))  # stripe / telegram / bank_transfer / cash_on_delivery
    # Stripe payment method types offered (card, alipay, wechat_pay); ignored by other providers.
    method_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)
    instructions: Mapped[str | None] = mapped_column(Text, default=None)  # bank details for a transfer


class Payment(Base):
    """One attempt to collect an order's total through a provider."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("provider", "reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    # The provider's id (Stripe Checkout Session id, Telegram invoice payload, offline reference the shopper quotes).
    reference: Mapped[str] = mapped_column(String(200))
    charge_id: Mapped[str | None] = mapped_column(String(200), default=None)  # payment intent / telegram charge
    amount: Mapped[Decimal] = mapped_column(money_column_type())
    currency: Mapped[str] = mapped_column(String(3))
    # creating (row saved, provider not yet answered) / pending / succeeded / failed / expired / mismatch
    status: Mapped[str] = mapped_column(String(20))
    url: Mapped[str | None] = mapped_column(Text, default=None)
    amount_refunded: Mapped[Decimal] = mapped_column(money_column_type(), default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Sent with every call that opens this payment at the provider, so a retry or a crash never charges twice.
    idempotency_key: Mapped[str | None] = mapped_column(String(120), default=None)
    method_types: Mapped[list[str]] = mapped_column(JSON, default=list)


class PaymentEvent(Base):
    """A provider event seen once: a replay finds its row and changes nothing."""

    __tablename__ = "payment_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(80))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), default=None)
    outcome: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentRefund(Base):
    __tablename__ = "payment_refunds"
    __table_args__ = (UniqueConstraint("payment_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(120))
    amount: Mapped[Decimal] = mapped_column(money_column_type())
    currency: Mapped[str] = mapped_column(String(3))
    provider_ref: Mapped[str | None] = mapped_column(String(200), default=None)
    reason: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # [{"line_id", "sku", "quantity", "amount"}]: what came back per order line ([] for an amount-only refund).
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    restocked: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when a supervisor or the owner refunded outside the return policy: why, and who (also in the audit log).
    override_reason: Mapped[str | None] = mapped_column(String(300), default=None)
    actor: Mapped[str | None] = mapped_column(String(300), default=None)
    # done: given back (through the provider, or recorded by the person who made it); owed: a cancelled order's
    # refund the provider cannot make by API (Telegram Payments, bank transfer, cash): a person must send it.
    status: Mapped[str] = mapped_column(String(20), default="done", server_default="done")


class PaymentSetting(Base):
    """The merchant's payment settings (order_expiry_minutes); a key that is not here takes the settings' default."""

    __tablename__ = "payment_settings"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
