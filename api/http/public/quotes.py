"""Shopper-facing cross-border answers: landed-cost quotes, shipping options, return policies."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, model_validator

from api.deps import SessionDep
from commerce import cross_border
from commerce.catalog.service import get_variant, variant_price
from commerce.cross_border.schemas import Quote, QuoteLineIn, ReturnPolicyView, ShippingOption
from commerce.money import quantize
from kit.fields import PlainDecimal

router = APIRouter(prefix="/api/v1", tags=["cross-border"])


class QuoteRequest(BaseModel):
    """Either one product (`sku` + `quantity`) or a cart (`lines`), delivered to `destination`."""

    sku: str | None = Field(default=None, min_length=1, max_length=64)
    quantity: int = Field(default=1, gt=0, le=10_000)
    lines: list[QuoteLineIn] | None = Field(default=None, max_length=200)
    destination: str = Field(min_length=1, max_length=60, description="ISO 3166 alpha-2 country, e.g. DE")
    currency: str = Field(min_length=1, max_length=10, description="ISO 4217 currency, e.g. EUR")
    service: str | None = Field(default=None, max_length=20, description="standard (default) or express")

    @model_validator(mode="after")
    def _one_of_sku_or_lines(self) -> QuoteRequest:
        if (self.sku is None) == (self.lines is None):
            raise ValueError("send either sku (+ quantity) or lines, not both or neither")
        return self

    def quote_lines(self) -> list[QuoteLineIn]:
        if self.lines is not None:
            return self.lines
        assert self.sku is not None
        return [QuoteLineIn(sku=self.sku, quantity=self.quantity)]


@router.post("/quotes", response_model=Quote)
async def create_quote(data: QuoteRequest, session: SessionDep) -> Quote:
    """The delivered price: every line, totals, who collects duty and tax (DDP/DAP), delivery dates, rate age."""
    return await cross_border.quote(session, lines=data.quote_lines(), destination=data.destination,
                                    currency=data.currency, service=data.service)


@router.get("/shipping-options", response_model=list[ShippingOption])
async def list_shipping_options(session: SessionDep, destination: str,
                                weight_grams: Annotated[int, Query(ge=0, le=1_000_000)],
                                value: Annotated[Decimal, Query(ge=0, max_digits=18, decimal_places=6)],
                                currency: str | None = None) -> list[ShippingOption]:
    """Delivery services, prices and times for a parcel of that weight and value."""
    return await cross_border.shipping_options(session, destination=destination, weight_grams=weight_grams,
                                               value=value, currency=currency)


class PriceOut(BaseModel):
    sku: str
    price: PlainDecimal
    currency: str
    shop_price: PlainDecimal
    shop_currency: str
    rate: PlainDecimal
    rate_as_of: str
    rate_age_days: int


@router.get("/prices/{sku}", response_model=PriceOut)
async def get_price(sku: str, currency: str, session: SessionDep) -> PriceOut:
    """A product's price in the shopper's currency, with the rate used and its age (duties and taxes excluded)."""
    variant = await get_variant(session, sku=sku)
    shop_price = variant_price(variant, variant.product)
    conversion = await cross_border.convert(session, amount=shop_price, from_currency=variant.product.currency,
                                            to_currency=currency)
    return PriceOut(sku=sku, price=quantize(conversion.amount, conversion.to_currency),
                    currency=conversion.to_currency, shop_price=shop_price, shop_currency=variant.product.currency,
                    rate=conversion.rate, rate_as_of=conversion.as_of.isoformat(), rate_age_days=conversion.age)


@router.get("/returns/{country}", response_model=ReturnPolicyView)
async def get_return_policy(
    country: str, session: SessionDep,
    locale: Annotated[str | None, Query(max_length=35, description="e.g. zh-CN; English when untranslated")] = None,
) -> ReturnPolicyView:
    """The return window and refund rules a shopper in `country` gets, conditions in `locale` when translated."""
    return await cross_border.return_policy(session, country=country, locale=locale)
