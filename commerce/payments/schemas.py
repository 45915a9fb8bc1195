from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from kit.fields import PlainDecimal

PROVIDERS = ("stripe", "telegram", "bank_transfer", "cash_on_delivery")
OFFLINE = frozenset({"bank_transfer", "cash_on_delivery"})


@dataclass(frozen=True)
class Charge:
    """What a provider is asked to collect for an order: `amount_minor` in the currency's minor unit."""

    order_id: int
    number: str
    public_ref: str
    amount: Decimal
    currency: str
    amount_minor: int


@dataclass(frozen=True)
class ProviderPayment:
    reference: str  # the provider's id for this attempt (payment intent, invoice payload, offline reference)
    url: str | None  # where the shopper pays (None: paid in the chat, or offline)


class PaymentMethodIn(BaseModel):
    country: str = Field(pattern=r"^([A-Z]{2}|\*)$")
    channel: str = Field(pattern=r"^([a-z]{2,20}|\*)$")
    provider: str = Field(pattern="^(" + "|".join(PROVIDERS) + ")$")
    method_types: list[str] = Field(default_factory=list, max_length=10)
    position: int = 0
    instructions: str | None = Field(default=None, max_length=2000)


class PaymentMethodOut(PaymentMethodIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class RefundIn(BaseModel):
    amount: PlainDecimal | None = Field(default=None, gt=0, description="None: the whole remaining amount")
    reason: str | None = Field(default=None, max_length=300)
    idempotency_key: str = Field(min_length=1, max_length=120)


class RefundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    amount: PlainDecimal
    currency: str
    provider_ref: str | None
    reason: str | None
    created_at: datetime


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    provider: str
    reference: str
    amount: PlainDecimal
    currency: str
    status: str
    url: str | None
    amount_refunded: PlainDecimal
    created_at: datetime
    updated_at: datetime


class PaymentStateOut(BaseModel):
    order_id: int
    number: str
    status: str
    currency: str
    total: PlainDecimal
    due_on_delivery: PlainDecimal
    amount_paid: PlainDecimal
    amount_refunded: PlainDecimal
    attention: str | None
    payments: list[PaymentOut]
    refunds: list[RefundOut]
