from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from commerce.catalog.schemas import CountryCode, Sku
from kit.fields import PlainDecimal


class CartLineIn(BaseModel):
    sku: Sku
    quantity: int = Field(gt=0, le=99)


class AddressIn(BaseModel):
    country: CountryCode
    recipient: str = Field(max_length=120)
    street: list[str] = Field(min_length=1, max_length=3)
    city: str | None = Field(default=None, max_length=120)
    district: str | None = Field(default=None, max_length=120)
    region: str | None = Field(default=None, max_length=120)
    postcode: str | None = Field(default=None, max_length=20)
    phone: str = Field(min_length=3, max_length=40)


class Address(BaseModel):
    """A validated, normalised delivery address (region as the country's code, phone in E.164)."""

    country: str
    recipient: str
    street: list[str]
    city: str | None = None
    district: str | None = None
    region: str | None = None
    postcode: str | None = None
    phone: str


class SummaryItem(BaseModel):
    sku: str
    title: str
    options: str  # "Red / M": the variant's readable options, "" for a product with one variant
    quantity: int
    unit_price: PlainDecimal
    line_total: PlainDecimal


class SummaryCharge(BaseModel):
    """One line of the summary after the goods: shipping, insurance, duty, import tax, fees."""

    kind: Literal["shipping", "insurance", "duty", "import_tax", "fees"]
    label: str
    amount: PlainDecimal
    collected_by: Literal["shop_at_checkout", "carrier_on_delivery"]


class ServiceChoice(BaseModel):
    """A delivery service as its button shows it; `shipping` is exactly the summary's shipping line with it."""

    service: str
    name: str
    shipping: PlainDecimal
    min_days: int
    max_days: int


class RateUsed(BaseModel):
    from_currency: str
    to_currency: str
    rate: PlainDecimal
    as_of: str
    markup_percent: PlainDecimal


class CheckoutSummary(BaseModel):
    """Exactly what "Place order" charges. `pay_now` is the amount charged, `due_on_delivery` what the carrier
    collects (DAP); `digest` changes with anything shown."""

    country: str
    currency: str
    minor_units: int
    items: list[SummaryItem]
    goods: PlainDecimal
    charges: list[SummaryCharge]
    shipping: PlainDecimal
    insurance: PlainDecimal
    fees: PlainDecimal
    duties: PlainDecimal
    taxes: PlainDecimal
    pay_now: PlainDecimal
    due_on_delivery: PlainDecimal
    incoterm: Literal["DDP", "DAP"] | None  # None: no landed-cost rules for the destination (goods only)
    service: ServiceChoice | None
    services: list[ServiceChoice]
    exchange_rates: list[RateUsed]
    address: Address | None = None
    email: str | None = None
    digest: str

    @property
    def amount_minor(self) -> int:
        """`pay_now` in the currency's minor unit (what a payment provider is asked for)."""
        return int(self.pay_now.scaleb(self.minor_units).to_integral_exact())


def to_minor(amount: Decimal, minor_units: int) -> int:
    return int(amount.scaleb(minor_units).to_integral_exact())
