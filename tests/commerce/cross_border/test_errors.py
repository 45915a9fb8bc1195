"""Bad input gets a domain error with a stable code the bot can answer with, never a wrong price."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from commerce.catalog.errors import UnknownCurrency, UnknownSku
from commerce.catalog.models import Product
from commerce.cross_border import (
    DestinationNotServed,
    InvalidWeight,
    NotSellableToDestination,
    ServiceNotOffered,
    StaleExchangeRate,
    UnknownCountry,
    quote,
    shipping_options,
)
from commerce.cross_border.errors import InvalidQuoteRequest, NoImportRule, TooHeavy
from kit.db import Database
from kit.errors import ShopTalkError
from tests.commerce.cross_border.conftest import ON


async def _fails(db: Database, error: type[ShopTalkError], *, lines: list[dict[str, object]] | None = None,
                 destination: str = "DE", currency: str = "EUR", service: str | None = None,
                 on: object = ON) -> ShopTalkError:
    async with db.sessions() as session:
        with pytest.raises(error) as caught:
            await quote(session, lines=lines if lines is not None else [{"sku": "TEE-1", "quantity": 1}],
                        destination=destination, currency=currency, service=service, on=on)  # type: ignore[arg-type]
    return caught.value


async def test_brazil_is_not_served(shop: Database) -> None:
    error = await _fails(shop, DestinationNotServed, destination="br")
    assert error.code == "destination_not_served"
    assert error.detail == "We can't ship to Brazil."
    assert error.extra["country"] == "BR"


async def test_sanctioned_and_unlisted_destinations_are_not_served(shop: Database) -> None:
    for country in ("RU", "KP", "AR"):
        error = await _fails(shop, DestinationNotServed, destination=country)
        assert error.status == 422


async def test_unknown_country_and_currency(shop: Database) -> None:
    assert (await _fails(shop, UnknownCountry, destination="XX")).code == "unknown_country"
    assert (await _fails(shop, UnknownCountry, destination="Germany")).code == "unknown_country"
    assert (await _fails(shop, UnknownCurrency, currency="EURO")).code == "unknown_currency"


async def test_product_not_sellable_to_destination(shop: Database) -> None:
    error = await _fails(shop, NotSellableToDestination, lines=[{"sku": "LAMP-1", "quantity": 1}], destination="GB")
    assert error.code == "not_sellable_to_destination"
    assert "United Kingdom" in error.detail


async def test_zero_weight_is_refused(shop: Database) -> None:
    async with shop.unit_of_work() as session:
        await session.execute(update(Product).where(Product.slug == "tee").values(weight_grams=0))
    assert (await _fails(shop, InvalidWeight)).code == "invalid_weight"
    async with shop.sessions() as session:
        with pytest.raises(InvalidWeight):
            await shipping_options(session, destination="DE", weight_grams=0, value=10, on=ON)  # type: ignore[arg-type]


async def test_stale_rate_refuses_the_quote(shop: Database) -> None:
    error = await _fails(shop, StaleExchangeRate, destination="GB", currency="GBP", on=ON + timedelta(days=6))
    assert error.code == "stale_exchange_rate"
    assert error.status == 503


async def test_unknown_sku_service_empty_cart_and_too_heavy(shop: Database) -> None:
    assert (await _fails(shop, UnknownSku, lines=[{"sku": "NOPE", "quantity": 1}])).code == "unknown_sku"
    assert (await _fails(shop, ServiceNotOffered, service="drone")).code == "service_not_offered"
    assert (await _fails(shop, InvalidQuoteRequest, lines=[])).code == "invalid_quote_request"
    assert (await _fails(shop, TooHeavy, lines=[{"sku": "JKT-1", "quantity": 40}])).code == "parcel_too_heavy"


async def test_no_rule_for_destination_is_an_error_not_a_guess(shop: Database) -> None:
    from commerce.cross_border.admin import create_zone
    from commerce.cross_border.schemas import ShippingServiceIn, ShippingZoneIn

    async with shop.unit_of_work() as session:
        await create_zone(session, data=ShippingZoneIn(
            code="korea", name="Korea", countries=["KR"], warehouse="SZX", origin_country="CN",
            services=[ShippingServiceIn(service="standard", name="Standard", currency="USD", base_price=8,
                                        min_days=3, max_days=6)]))
    assert (await _fails(shop, NoImportRule, destination="KR")).code == "no_import_rule"


async def test_shipping_options_for_the_bot(shop: Database) -> None:
    from decimal import Decimal

    async with shop.sessions() as session:
        options = await shipping_options(session, destination="JP", weight_grams=1200, value=Decimal("50"),
                                         currency="EUR", on=ON)
    # 2 started kg: standard 8 + 2 x 4 = 16 USD = 12.80 EUR; express 22 + 2 x 9 = 40 USD = 32.00 EUR
    assert [(o.service, o.price, o.min_days, o.max_days) for o in options] == [
        ("standard", Decimal("12.80"), 5, 12), ("express", Decimal("32.00"), 3, 5)]
    assert options[1].insurance == Decimal("0.50")
