"""The engine on the demo shop (api/demo/catalog.json): realistic catalogue, orders and shoppers. Slow to load."""
from __future__ import annotations

import pytest

from api.demo.loader import load_demo
from commerce.cross_border import load_cross_border_defaults
from commerce.search import service as search
from kit.db import Database
from tests.bot.conftest import Say, texts

pytestmark = pytest.mark.slow


@pytest.fixture
async def demo(db: Database) -> Database:
    async with db.unit_of_work() as session:
        await load_demo(session)
        await load_cross_border_defaults(session)
    return db


@pytest.fixture
def say_demo(demo: Database, say: Say) -> Say:
    return say


@pytest.fixture
def shop(demo: Database) -> Database:
    return demo  # the conftest's `say` talks to the demo shop instead of the small one


async def test_demo_shopper_tracks_her_order(say_demo: Say) -> None:
    asked = await say_demo("where is my order?", sender="100001")
    offered = {b.title: b.payload for r in asked.replies for b in r.buttons}
    title = next(t for t in offered if t.startswith("#10001 · ST-"))
    assert offered[title] == f"order:status:{title.split(' · ')[1]}"  # the button carries the public reference
    shown = texts(await say_demo(kind="callback", payload=offered[title], sender="100001"))
    assert "Order #10001: delivered" in shown
    assert "DHL" in shown


async def test_demo_search_in_both_languages(say_demo: Say) -> None:
    chinese = await say_demo("有水壶吗", sender="d-zh")
    assert chinese.replies[0].cards[0].sku.startswith("KET-GN")
    english = await say_demo("show me black hoodies in size L", sender="d-en")
    assert [c.sku for r in english.replies for c in r.cards] == ["HOOD-HW-BLK-L"]


async def test_demo_product_not_sellable_to_the_destination(say_demo: Say) -> None:
    assert "Australia" in texts(await say_demo("do you ship to Australia?", sender="d-au"))
    found = await say_demo("I'm looking for a power bank", sender="d-au")
    assert "PB-20K-BLK" not in [c.sku for r in found.replies for c in r.cards]
    refused = texts(await say_demo(kind="callback", payload="cart:add:PB-20K-BLK", sender="d-au"))
    assert "can't be delivered to Australia" in refused



@pytest.mark.parametrize(("words", "slug_start"), [("充电宝", "PB-20K"), ("行李箱", "CASE-55-"), ("丝巾", "SCRF-SLK-")])
async def test_demo_everyday_chinese_names_find_the_product(demo: Database, say_demo: Say, words: str,
                                                            slug_start: str) -> None:
    # The titles say 移动电源, 登机箱 and 方巾; the demo's merchant synonym groups carry the words shoppers use.
    async with demo.sessions() as session:
        found = await search.search_products(session, query=words, country="DE", limit=3)
    assert found.hits[0].sku.startswith(slug_start), [h.sku for h in found.hits]
    asked = await say_demo(f"我想买{words}", sender=f"d-colloquial-{slug_start}")
    assert asked.replies[0].cards[0].sku.startswith(slug_start), [c.sku for r in asked.replies for c in r.cards]
