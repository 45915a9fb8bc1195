from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from commerce.catalog.schemas import CountryCode, CurrencyCode, Sku
from kit.fields import Money, PlainDecimal, RowId
from kit.text import EMAIL_ADDRESS_PATTERN

STATUSES = ("pending_payment", "paid", "packed", "fulfilled", "shipped", "delivered", "cancelled", "expired",
            "return_requested", "refunded")
# fulfilled = handed to the carrier with a tracking number (shipped is its older name; both stay valid).
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending_payment": frozenset({"paid", "cancelled", "expired"}),
    "paid": frozenset({"packed", "fulfilled", "cancelled", "refunded"}),
    "packed": frozenset({"shipped", "fulfilled", "cancelled"}),
    "fulfilled": frozenset({"delivered", "return_requested"}),
    "shipped": frozenset({"delivered", "return_requested"}),
    "delivered": frozenset({"return_requested", "refunded"}),
    "return_requested": frozenset({"refunded", "delivered"}),
    "cancelled": frozenset(),
    "expired": frozenset(),
    "refunded": frozenset(),
}


class OrderLineIn(BaseModel):
    sku: Sku
    quantity: int = Field(gt=0, le=10_000)
    unit_price: PlainDecimal | None = Field(default=None, gt=0, max_digits=18, decimal_places=6)


class OrderIn(BaseModel):
    channel: str = Field(min_length=1, max_length=40)
    external_id: str = Field(min_length=1, max_length=120)
    currency: CurrencyCode
    lines: list[OrderLineIn] = Field(min_length=1, max_length=200)
    shopper_id: RowId | None = None
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_ADDRESS_PATTERN)
    postcode: str | None = Field(default=None, max_length=20)
    country: CountryCode | None = None
    shipping: Money = Field(default=Decimal(0), ge=0)
    shipping_service: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")
    duties: Money = Field(default=Decimal(0), ge=0)
    taxes: Money = Field(default=Decimal(0), ge=0)
    insurance: Money = Field(default=Decimal(0), ge=0)
    fees: Money = Field(default=Decimal(0), ge=0)
    # The part of duties + taxes + fees the carrier collects on delivery (DAP): not charged, not in `total`.
    due_on_delivery: Money = Field(default=Decimal(0), ge=0)
    incoterm: Literal["DDP", "DAP"] | None = None
    exchange_rates: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    recipient: str | None = Field(default=None, max_length=120)
    phone: str | None = Field(default=None, max_length=40)
    address: dict[str, Any] | None = None
    summary_digest: str | None = Field(default=None, max_length=64)
    expires_at: datetime | None = None


class TransitionIn(BaseModel):
    status: str = Field(min_length=1, max_length=20)
    note: str | None = Field(default=None, max_length=500)
    carrier: str | None = Field(default=None, max_length=60)
    tracking_number: str | None = Field(default=None, max_length=80)


class OrderLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    sku: str
    title: str
    quantity: int
    unit_price: PlainDecimal
    line_total: PlainDecimal


class StatusChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    from_status: str | None
    to_status: str
    note: str | None
    changed_at: datetime


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    number: str
    public_ref: str = Field(description="Unguessable reference shown to the shopper, e.g. ST-7K3MQ-9XPAB")
    channel_id: int
    external_id: str
    shopper_id: int | None
    country: str | None
    currency: str
    subtotal: PlainDecimal
    shipping: PlainDecimal
    shipping_service: str | None = None
    duties: PlainDecimal
    taxes: PlainDecimal
    insurance: PlainDecimal = Decimal(0)
    fees: PlainDecimal = Decimal(0)
    due_on_delivery: PlainDecimal = Field(default=Decimal(0), description="Collected by the carrier (DAP)")
    incoterm: str | None = None
    exchange_rates: list[dict[str, Any]] = Field(default_factory=list)
    amount_paid: PlainDecimal = Decimal(0)
    amount_refunded: PlainDecimal = Decimal(0)
    attention: str | None = Field(default=None, description="Why a person must look (e.g. a payment mismatch)")
    expires_at: datetime | None = None
    total: PlainDecimal
    status: str
    carrier: str | None
    tracking_number: str | None
    created_at: datetime
    lines: list[OrderLineOut]
    history: list[StatusChangeOut]
