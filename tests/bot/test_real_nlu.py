"""The engine with the real NLU (trained once per test session) and the real FAQ index: slow."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import knowledge_base
from bot import BotDeps
from bot.deps import _encoder_of, teach_catalog_words
from bot.skills.faq import knowledge_base_source
from commerce.inventory import service as inventory
from commerce.orders import service as orders
from kit.db import Database
from kit.settings import Settings
from nlu.service import NluService
from tests.bot.checkout_flow import give_address
from tests.bot.conftest import Say, texts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def real_nlu(models_dir: Path) -> NluService:
    service = NluService(models_dir=models_dir)
    service.ensure_model()
    return service


@pytest.fixture
async def real_deps(shop: Database, real_nlu: NluService) -> AsyncIterator[BotDeps]:
    async with shop.unit_of_work() as session:
        await knowledge_base.load_demo_faq(session, embedder=real_nlu.embedder)
        await teach_catalog_words(real_nlu, session)
    deps = BotDeps(settings=Settings(), nlu=real_nlu, knowledge=await knowledge_base_source(shop),
                   encoder=_encoder_of(real_nlu))
    yield deps
    await knowledge_base.close_index(shop)


async def test_real_nlu_search_cart_checkout_en_and_zh(say: Say, shop: Database, real_deps: BotDeps) -> None:
    found = await say("do you sell electric kettles?", sender="r1", deps=real_deps)
    assert "KET-1" in [c.sku for r in found.replies for c in r.cards]
    await say(kind="callback", payload="cart:add:KET-1", sender="r1", deps=real_deps)
    assert "country" in texts(await say("I'd like to check out", sender="r1", deps=real_deps))
    await say("Germany", sender="r1", deps=real_deps)
    await say("anna@example.com", sender="r1", deps=real_deps)
    assert "Place order" in texts(await give_address(say, "DE", sender="r1", deps=real_deps))
    placed = await say("yes", sender="r1", deps=real_deps)
    assert "Order #" in texts(placed)

    found = await say("有没有电热水壶", sender="r2", deps=real_deps)
    assert "KET-1" in [c.sku for r in found.replies for c in r.cards]
    await say(kind="callback", payload="cart:add:KET-1", sender="r2", deps=real_deps)
    assert "国家" in texts(await say("我要结账", sender="r2", deps=real_deps))
    await say("德国", sender="r2", deps=real_deps)
    await say("li@example.com", sender="r2", deps=real_deps)
    assert "下单前请核对" in texts(await give_address(say, "DE", sender="r2", deps=real_deps))
    placed = await say("确认", sender="r2", deps=real_deps)
    assert "已提交" in texts(placed)
    async with shop.unit_of_work() as session:
        assert (await inventory.available_stock(session, skus=["KET-1"]))["KET-1"] == 8
        assert len(await orders.list_orders(session)) == 2


async def test_real_nlu_slot_filling_and_faq(say: Say, real_deps: BotDeps) -> None:
    assert "Which country" in texts(await say("how much does shipping cost?", sender="r3", deps=real_deps))
    assert "Delivery to Germany" in texts(await say("Germany", sender="r3", deps=real_deps))
    assert "order number" in texts(await say("where is my order?", sender="r3", deps=real_deps))
    # named by its sequential number, only the order's e-mail proves it (a postcode needs the public reference)
    assert "e-mail address used for order #10023" in texts(await say("#10023", sender="r3", deps=real_deps))
    methods = texts(await say("What payment methods do you accept?", sender="r4", deps=real_deps))
    assert "PayPal" in methods
    wrapping = texts(await say("有礼品包装吗？", sender="r5", deps=real_deps))
    assert "礼" in wrapping


async def test_concurrent_messages_share_the_embedder(say: Say, real_deps: BotDeps) -> None:
    results = await asyncio.gather(*(say("hello", sender=f"c{i}", deps=real_deps) for i in range(4)))
    assert all("Hi" in texts(r) for r in results)
