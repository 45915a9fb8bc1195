"""The test factories give each product a Chinese title of its own (search learns word translations from bilingual
titles: every product called 水壶 "kettle" taught it that a teapot is a kettle)."""
from __future__ import annotations

import pytest

from commerce.search import service as search
from kit.db import Database
from tests.factories import make_product, make_shop


async def test_each_product_gets_a_chinese_title_from_its_own_name(db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        kettle = await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 3}})
        teapot = await make_product(session, slug="glass-teapot", title="Glass Teapot", skus={"POT-1": {"RTM": 3}})
        numbered = await make_product(session, slug="item-7", skus={"IT-7": {"RTM": 1}})
        named = await make_product(session, slug="brewhaus", skus={"BRW-1": {"RTM": 1}}, zh_title="布鲁豪斯")
    assert kettle.title == {"en": "Kettle", "zh": "水壶"}
    assert teapot.title == {"en": "Glass Teapot", "zh": "玻璃茶壶"}
    assert numbered.title == {"en": "Item 7", "zh": "商品7"}
    assert named.title == {"en": "Brewhaus", "zh": "布鲁豪斯"}
    async with db.sessions() as session:  # the Chinese for kettle finds the kettle first, and never "item 7"
        kettles = await search.search_products(session, query="水壶")
        teapots = await search.search_products(session, query="茶壶")
    assert kettles.hits[0].product_id == kettle.id
    assert numbered.id not in [hit.product_id for hit in kettles.hits]
    assert teapots.hits[0].product_id == teapot.id


async def test_a_name_the_factory_cannot_translate_needs_a_chinese_title(db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        with pytest.raises(ValueError, match="zh_title"):
            await make_product(session, slug="flux-capacitor", skus={"FC-1": {}})
