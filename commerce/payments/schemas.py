from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

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
    payment_id: int | None = None  # our payment row, in the provider's metadata (found even if never recorded)


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


class RefundLineIn(BaseModel):
    line_id: int = Field(gt=0, lt=2**31)
    quantity: int = Field(gt=0, le=10_000)


class RefundIn(BaseModel):
    amount: PlainDecimal | None = Field(default=None, gt=0,
                                        description="None: the lines' refund by the return policy, or all that is left")
    lines: list[RefundLineIn] = Field(default_factory=list, max_length=200,
                                      description="Order lines (and how many units) that come back")
    reason: str | None = Field(default=None, max_length=300)
    idempotency_key: str = Field(min_length=1, max_length=120)
    restock: bool = Field(default=True, description="Put the refunded lines' units back on hand")
    override_reason: str | None = Field(default=None, max_length=300,
                                        description="Why the return policy is overridden (supervisor or owner)")


class PaymentSettingsIn(BaseModel):
    order_expiry_minutes: int = Field(ge=1, le=60 * 24 * 14, description="How long an unpaid order holds its stock")


class PaymentSettingsOut(PaymentSettingsIn):
    pass


class RefundSentIn(BaseModel):
    reference: str = Field(min_length=1, max_length=200,
                           description="Where the refund sent by hand can be found: bank statement line, refund id")


class RefundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    amount: PlainDecimal
    currency: str
    provider_ref: str | None
    reason: str | None
    created_at: datetime
    lines: list[dict[str, Any]]
    restocked: bool
    override_reason: str | None
    actor: str | None
    status: str = Field(default="done", description="done, or owed: a person must still send it (cancelled order "
                                                     "paid by Telegram Payments or offline)")


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
