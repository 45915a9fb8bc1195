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


# The Chinese of the words test products are named with: a product's Chinese title is its English one word by word
# (adjective before noun, as in Chinese), so each product has its own and search learns true translations from them.
CHINESE = {"kettle": "水壶", "teapot": "茶壶", "mug": "马克杯", "cup": "杯子", "cups": "杯子", "jug": "水罐",
           "pot": "锅", "toaster": "烤面包机", "bread": "面包", "bin": "箱", "descaler": "除垢剂", "electric": "电",
           "glass": "玻璃", "steel": "不锈钢", "clay": "陶土", "empty": "空", "yen": "日元", "item": "商品"}


def chinese_title(english: str) -> str:
    """`english` in Chinese word by word (numbers kept); ValueError naming `zh_title` for a word not in CHINESE."""
    words = []
    for word in english.lower().split():
        if word.isdigit():
            words.append(word)
        elif word in CHINESE:
            words.append(CHINESE[word])
        else:
            raise ValueError(f"No Chinese for {word!r} in tests.factories.CHINESE: give make_product a zh_title.")
    return "".join(words)


async def make_product(session: AsyncSession, *, slug: str, skus: dict[str, dict[str, int]],
                       price: str = "49.90", currency: str = "EUR", title: str | None = None,
                       zh_title: str | None = None, sellable_countries: list[str] | None = None) -> Product:
    """A product whose variants have the given stock per location, e.g. {"KET-1": {"RTM": 10}}; its Chinese title
    is `zh_title`, else its English one translated by `chinese_title`."""
    english = title or slug.replace("-", " ").title()
    product = await catalog.create_product(session, data=ProductIn(
        slug=slug, category="home-kitchen", title={"en": english, "zh": zh_title or chinese_title(english)},
        description={"en": "A test product."}, base_price=Decimal(price), currency=currency,
        sellable_countries=sellable_countries or [],
        variants=[VariantIn(sku=sku) for sku in skus]))
    for sku, per_location in skus.items():
        for location, quantity in per_location.items():
            await inventory.set_stock(session, sku=sku, location=location, on_hand=quantity)
    return product
