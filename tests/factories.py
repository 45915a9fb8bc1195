"""Factories for the commerce domain, built through the real services."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog import service as catalog
from commerce.catalog.models import Product
from commerce.catalog.schemas import CategoryIn, ProductIn, VariantIn
from commerce.channels import service as channels
from commerce.inventory import service as inventory


async def make_shop(session: AsyncSession) -> None:
    """Two warehouses, three sales channels and one category."""
    await inventory.create_location(session, code="SZX", name="Shenzhen warehouse", country="CN")
    await inventory.create_location(session, code="RTM", name="Rotterdam warehouse", country="NL")
    for code, kind in (("web", "web"), ("telegram", "telegram"), ("marketplace", "marketplace")):
        await channels.create_channel(session, code=code, name=code.title(), kind=kind)
    await catalog.create_category(session, data=CategoryIn(slug="home-kitchen", name={"en": "Home & kitchen",
                                                                                        "zh": "家居厨房"},
                                                           hs_chapter="85"))


async def make_product(session: AsyncSession, *, slug: str, skus: dict[str, dict[str, int]],
                       price: str = "49.90", currency: str = "EUR", title: str | None = None,
                       sellable_countries: list[str] | None = None) -> Product:
    """A product whose variants have the given stock per location, e.g. {"KET-1": {"RTM": 10}}."""
    product = await catalog.create_product(session, data=ProductIn(
        slug=slug, category="home-kitchen", title={"en": title or slug.replace("-", " ").title(), "zh": "水壶"},
        description={"en": "A test product."}, base_price=Decimal(price), currency=currency,
        sellable_countries=sellable_countries or [],
        variants=[VariantIn(sku=sku) for sku in skus]))
    for sku, per_location in skus.items():
        for location, quantity in per_location.items():
            await inventory.set_stock(session, sku=sku, location=location, on_hand=quantity)
    return product
