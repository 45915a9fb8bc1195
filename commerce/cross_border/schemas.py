"""Pydantic shapes: editable rule rows (in/out) and the landed-cost quote."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from kit.fields import MAX_ID, Money, PlainDecimal

Collector = Literal["shop", "carrier"]


def _lower_dashed(value: object) -> object:
    return value.strip().lower().replace("_", "-") if isinstance(value, str) else value


def _not_english(locale: str) -> str:
    if locale.split("-", 1)[0] == "en":
        raise ValueError("English is the policy's own conditions and notes, not a translation")
    return locale


# A BCP 47 language tag, lower case ('zh', 'zh-hant', 'pt-br'); English is the policy's own text.
LocaleCode = Annotated[str, BeforeValidator(_lower_dashed),
                       StringConstraints(pattern=r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$"), AfterValidator(_not_english)]
Condition = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
# Codes are trimmed before their length is checked: the admin service stores them trimmed.
# and upper-cased, which can lengthen a letter ('ß' -> 'SS'): the column's length is checked after that too.
def _upper_within(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        value = value.upper()
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters once upper-cased")
        return value

    return AfterValidator(check)


Region = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=8), _upper_within(8)]
Scope = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8), _upper_within(8)]
Code3 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$")]
Code2 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")]


class _Sourced(BaseModel):
    source_title: str = Field(min_length=1, max_length=300)
    source_url: str = Field(max_length=500)
    notes: str = ""


class ImportRuleIn(_Sourced):
    region: Region
    name: str = Field(min_length=1, max_length=160)
    currency: Code3
    effective_from: date
    effective_to: date | None = None
    low_value_max: Money | None = Field(default=None, ge=0)
    threshold_basis: Literal["goods", "goods_shipping"] = "goods"
    personal_use_value_percent: Money = Field(default=Decimal(100), gt=0, le=100)
    low_value_duty: Literal["none", "normal", "flat_per_item"] = "none"
    flat_duty_amount: Money | None = Field(default=None, ge=0)
    low_value_tax: Literal["none", "normal"] = "normal"
    low_value_tax_multiplier: Money = Field(default=Decimal(1), ge=0, le=1)
    low_value_collector: Collector = "carrier"
    high_value_collector: Collector = "carrier"
    scheme: str | None = Field(default=None, max_length=80)
    duty_basis: Literal["goods", "goods_shipping"] = "goods_shipping"
    clearance_fee: Money = Field(default=Decimal(0), ge=0)


class ImportRuleOut(ImportRuleIn):
    model_config = ConfigDict(from_attributes=True)
    id: int
    # A row saved before over-precise input was refused may hold 0 here (1e-7 rounded): it must still list.
    personal_use_value_percent: PlainDecimal


class TaxRateIn(_Sourced):
    country: Code2
    region: Region
    tax_name: str = Field(min_length=1, max_length=60)
    rate: Money = Field(ge=0, le=100)
    effective_from: date
    effective_to: date | None = None


class TaxRateOut(TaxRateIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class DutyRateIn(_Sourced):
    region: Region
    hs_chapter: str | None = Field(default=None, pattern=r"^\d{2}$")
    origin: Code2 | None = None
    rate: Money = Field(ge=0, le=1000)
    effective_from: date
    effective_to: date | None = None


class DutyRateOut(DutyRateIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class ShippingServiceIn(BaseModel):
    service: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=120)
    currency: Code3
    base_price: Money = Field(ge=0)
    price_per_kg: Money = Field(default=Decimal(0), ge=0)
    free_over: Money | None = Field(default=None, ge=0)
    insurance_percent: Money = Field(default=Decimal(0), ge=0, le=100)
    min_days: int = Field(ge=0, le=120)
    max_days: int = Field(ge=0, le=120)
    max_weight_grams: int = Field(default=30000, gt=0, le=MAX_ID)


class ShippingServiceOut(ShippingServiceIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class ShippingZoneIn(BaseModel):
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=120)
    countries: list[Code2] = Field(default_factory=list, max_length=300)
    warehouse: str | None = Field(default=None, min_length=1, max_length=40)
    origin_country: Code2 | None = None
    served: bool = True
    notes: str = ""
    services: list[ShippingServiceIn] = Field(default_factory=list)


class ShippingZoneOut(ShippingZoneIn):
    model_config = ConfigDict(from_attributes=True)
    id: int
    services: list[ShippingServiceOut] = Field(default_factory=list)  # type: ignore[assignment]


class ReturnPolicyText(BaseModel):
    """A return policy's conditions and notes in one language other than English."""

    conditions: list[Condition] = Field(default_factory=list)
    notes: str = Field(default="", max_length=2000)


class ReturnPolicyIn(BaseModel):
    scope: Scope
    window_days: int = Field(ge=0, le=3650)
    conditions: list[Condition] = Field(default_factory=list)  # English: the text for every other locale
    legal_basis: str = Field(min_length=1, max_length=300)
    source_url: str = Field(default="", max_length=500)
    refunds_outbound_shipping: bool = False
    duties_refundable: bool = True
    return_shipping_paid_by: Literal["shopper", "shop"] = "shopper"
    restocking_fee_percent: Money = Field(default=Decimal(0), ge=0, le=100)
    notes: str = ""
    translations: dict[LocaleCode, ReturnPolicyText] = Field(default_factory=dict)
    non_returnable_categories: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        default_factory=list, max_length=100)

    @field_validator("translations")
    @classmethod
    def _same_conditions(cls, value: dict[str, ReturnPolicyText],
                         info: ValidationInfo) -> dict[str, ReturnPolicyText]:
        # A translation states the same conditions: a missing or extra one would change the policy.
        english = info.data.get("conditions")
        for locale, text in value.items():
            if english is not None and len(text.conditions) != len(english):
                raise ValueError(f"translations.{locale}.conditions has {len(text.conditions)} conditions, "
                                 f"conditions (English) has {len(english)}: translate each one")
            if text.notes and not info.data.get("notes"):
                raise ValueError(f"translations.{locale}.notes is set but notes (English) is empty")
        return value


class ReturnPolicyOut(ReturnPolicyIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class ExchangeRateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    base: str
    currency: str
    rate: PlainDecimal
    as_of: date
    source: str


class CrossBorderSettings(BaseModel):
    fx_markup_percent: Money = Field(default=Decimal(0), ge=0, le=50)
    max_rate_age_days: int = Field(default=4, ge=0, le=365)
    fx_base: Code3 = "EUR"


# The quote

class QuoteLineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=10_000)


class QuoteItem(BaseModel):
    sku: str
    title: str
    quantity: int
    hs_chapter: str | None
    unit_price: PlainDecimal
    line_total: PlainDecimal
    currency: str
    weight_grams: int


class QuoteCharge(BaseModel):
    """One line of the landed cost: what it is, how much, and who collects it."""

    kind: Literal["goods", "shipping", "insurance", "duty", "import_tax", "fees"]
    label: str
    amount: PlainDecimal
    currency: str
    collected_by: Literal["shop_at_checkout", "carrier_on_delivery"]
    rate_percent: PlainDecimal | None = None
    basis: PlainDecimal | None = None
    note: str | None = None


class RateUsed(BaseModel):
    from_currency: str
    to_currency: str
    rate: PlainDecimal
    as_of: date
    age_days: int
    markup_percent: PlainDecimal


class DeliveryEstimate(BaseModel):
    service: str
    service_name: str
    min_days: int
    max_days: int
    earliest: date
    latest: date
    ships_from: str | None


class Source(BaseModel):
    title: str
    url: str
    notes: str = ""


class Quote(BaseModel):
    """A landed-cost quote. `total` is the sum of `charges`, each already rounded to the currency's minor unit."""

    destination: str
    destination_name: str
    currency: str
    items: list[QuoteItem]
    charges: list[QuoteCharge]
    total: PlainDecimal
    pay_at_checkout: PlainDecimal
    pay_on_delivery: PlainDecimal
    incoterm: Literal["DDP", "DAP"]
    customs: str
    who_collects: str
    scheme: str | None
    delivery: DeliveryEstimate
    rates: list[RateUsed]
    oldest_rate_age_days: int
    sources: list[Source]
    quoted_on: date


class ShippingOption(BaseModel):
    service: str
    name: str
    price: PlainDecimal
    currency: str
    insurance: PlainDecimal
    min_days: int
    max_days: int
    earliest: date
    latest: date
    ships_from: str | None


class ReturnPolicyView(BaseModel):
    """The return policy a shopper in `country` gets."""

    country: str
    scope: str
    locale: str  # the language of conditions and notes: the one asked for, or 'en' when it has no translation
    window_days: int
    conditions: list[str]
    notes: str
    legal_basis: str
    source_url: str
    refunds_outbound_shipping: bool
    duties_refundable: bool
    return_shipping_paid_by: str
    restocking_fee_percent: PlainDecimal
    non_returnable_categories: list[str] = Field(default_factory=list)


class Refund(BaseModel):
    currency: str
    goods: PlainDecimal
    shipping: PlainDecimal
    duties: PlainDecimal
    taxes: PlainDecimal
    restocking_fee: PlainDecimal
    return_shipping_deducted: PlainDecimal
    total: PlainDecimal
