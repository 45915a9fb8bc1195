"""A small shop with the shipped cross-border rules and round exchange rates, so examples are exact."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from commerce.catalog import service as catalog
from commerce.catalog.schemas import CategoryIn, ProductIn, VariantIn
from commerce.cross_border import import_rates, load_cross_border_defaults
from kit.db import Database
from kit.settings import Settings
from tests.http import app_client

# A Friday after the EU's flat EUR 3 duty started (1 July 2026) and after the US de minimis ended.
ON = date(2026, 11, 27)
EARLY = date(2025, 6, 2)  # EU: duty relief <= EUR 150; US: USD 800 de minimis still in force
SPRING = date(2026, 3, 2)
RATES = {"USD": "1.25", "GBP": "0.8", "JPY": "160", "CAD": "1.5", "AUD": "1.6", "SGD": "1.5", "CNY": "8",
         "KWD": "0.35", "HKD": "9", "NZD": "1.8"}
PRODUCTS = [
    # slug, sku, category, price EUR, grams, sellable countries
    ("tee", "TEE-1", "clothing", "40.00", 300, []),
    ("jacket", "JKT-1", "clothing", "200.00", 900, []),
    ("tea", "TEA-1", "tea", "12.00", 100, []),
    ("bag", "BAG-150", "bags", "150.00", 500, []),
    ("speaker", "SPK-1", "electronics", "120.00", 800, []),
    ("lamp", "LAMP-1", "electronics", "30.00", 1000, ["DE", "FR"]),
]


def rates_csv(*days: date) -> str:
    rows = ["date,base,currency,rate"]
    for day in days:
        rows += [f"{day.isoformat()},EUR,{code},{rate}" for code, rate in RATES.items()]
    return "\n".join(rows) + "\n"


async def make_cross_border_shop(session: AsyncSession) -> None:
    await load_cross_border_defaults(session, demo_rates=False)
    await import_rates(session, content=rates_csv(ON, EARLY, SPRING, ON - timedelta(days=30)))
    for slug, name, chapter in [("clothing", "Clothing", "62"), ("tea", "Tea", "09"), ("bags", "Bags", "42"),
                                ("electronics", "Electronics", "85")]:
        await catalog.create_category(session, data=CategoryIn(slug=slug, name={"en": name}, hs_chapter=chapter))
    for slug, sku, category, price, grams, countries in PRODUCTS:
        await catalog.create_product(session, data=ProductIn(
            slug=slug, category=category, title={"en": slug.title()}, description={}, base_price=Decimal(price),
            currency="EUR", weight_grams=grams, sellable_countries=countries, variants=[VariantIn(sku=sku)]))


@pytest.fixture
async def shop(db: Database) -> Database:
    async with db.unit_of_work() as session:
        await make_cross_border_shop(session)
    return db


@pytest.fixture
async def client(shop: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The app's API over the demo-like shop, in process (lifespan run)."""
    settings = Settings(environment="test", security={"secret_key": "test-secret-key-0123456789"})
    async with app_client(create_app(settings, database=shop)) as http:
        yield http
