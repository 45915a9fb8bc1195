"""The catalog's words reach the NLU live (bot.catalog_words): a product added through the catalog service is a
product word on the next message, without a restart; another process's change arrives within the TTL."""
from __future__ import annotations

import copy
from decimal import Decimal

from bot import BotDeps, InboundMessage, understand
from bot.catalog_words import CatalogWords
from commerce.catalog import service as catalog
from commerce.catalog.schemas import ProductIn, VariantIn
from commerce.inventory import service as inventory
from kit.db import Database
from tests.bot.conftest import Say, TinyParser

WORD = "samovar"  # in no product, category or tag of the test shop, nor in the NLU's training data


async def add_samovar(shop: Database) -> None:
    async with shop.unit_of_work() as session:
        await catalog.create_product(session, data=ProductIn(
            slug="brass-samovar", category="home-kitchen", title={"en": "Brass Samovar", "zh": "黄铜茶炊"},
            description={"en": "A brass samovar for tea.", "zh": "黄铜茶炊。"}, tags=["samovar"],
            base_price=Decimal("89.00"), currency="EUR", variants=[VariantIn(sku="SAM-1", attributes={})]))
        await inventory.set_stock(session, sku="SAM-1", location="RTM", on_hand=4)


def deps_with(bot_deps: BotDeps, tiny_parser: TinyParser, words: CatalogWords) -> BotDeps:
    parser = copy.copy(tiny_parser)  # its own vocabulary; the session's parser stays untouched
    parser.vocabulary = None
    return BotDeps(settings=bot_deps.settings, nlu=parser, catalog_words=words)


def inbound(text: str, n: int) -> InboundMessage:
    return InboundMessage(channel="telegram", sender_id="7001", message_id=f"live-{n}", kind="text", text=text)


async def test_a_product_added_through_the_service_is_a_product_word_on_the_next_message(
        shop: Database, say: Say, bot_deps: BotDeps, tiny_parser: TinyParser) -> None:
    words = CatalogWords(shop)
    deps = deps_with(bot_deps, tiny_parser, words)
    before = await understand(inbound(WORD, 1), deps=deps)
    assert before is not None
    assert not any(e.entity == "product" and e.value == WORD for e in before.entities)
    assert words.reloads == 1  # taught once, at the first message
    await add_samovar(shop)
    after = await understand(inbound(WORD, 2), deps=deps)
    assert after is not None
    assert after.intent == "product_search", after.intent
    assert any(e.entity == "product" and e.value == WORD for e in after.entities)
    assert words.reloads == 2
    found = await say(WORD, sender="7002", deps=deps)
    assert [c.sku for r in found.replies for c in r.cards][:1] == ["SAM-1"]
    again = await understand(inbound("kettle", 3), deps=deps)
    assert again is not None
    assert words.reloads == 2  # nothing changed since: the words are not read again


async def test_another_process_change_arrives_within_the_ttl(
        shop: Database, bot_deps: BotDeps, tiny_parser: TinyParser) -> None:
    now = [1000.0]
    # generation never moves: as if the product were added by another process (this one's write listener unseen).
    words = CatalogWords(shop, ttl=5.0, clock=lambda: now[0], generation=lambda: 0)
    deps = deps_with(bot_deps, tiny_parser, words)
    assert await words.refresh(deps.nlu)
    await add_samovar(shop)
    now[0] += 4.0
    assert not await words.refresh(deps.nlu)  # within the TTL: not even the fingerprint is read
    early = await understand(inbound(WORD, 4), deps=deps)
    assert early is not None
    assert early.intent != "product_search" or not any(e.value == WORD for e in early.entities)
    now[0] += 2.0
    late = await understand(inbound(WORD, 5), deps=deps)
    assert late is not None
    assert late.intent == "product_search"
    assert words.reloads == 2
    now[0] += 6.0
    assert not await words.refresh(deps.nlu)  # looked again, nothing changed: not taught again
    assert words.reloads == 2


async def test_a_renamed_category_is_seen_too(shop: Database, bot_deps: BotDeps, tiny_parser: TinyParser) -> None:
    now = [0.0]
    words = CatalogWords(shop, ttl=5.0, clock=lambda: now[0], generation=lambda: 0)
    deps = deps_with(bot_deps, tiny_parser, words)
    await words.refresh(deps.nlu)
    async with shop.unit_of_work() as session:
        category = next(c for c in await catalog.categories(session) if c.slug == "clothing")
        category.name = {**category.name, "en": "Knitwear"}
        await session.flush()
    now[0] += 6.0
    assert await words.refresh(deps.nlu)
    parsed = await understand(inbound("knitwear", 6), deps=deps)
    assert parsed is not None
    assert any(e.entity == "product" and e.value == "knitwear" for e in parsed.entities)  # a catalog word now


async def test_a_merchant_synonym_names_the_product_for_the_nlu_and_search(
        shop: Database, say: Say, bot_deps: BotDeps, tiny_parser: TinyParser) -> None:
    from commerce.search import service as search

    words = CatalogWords(shop)
    deps = deps_with(bot_deps, tiny_parser, words)
    colloquial = "萨摩瓦尔"  # a name the samovar's title (黄铜茶炊) and tags lack
    await add_samovar(shop)
    before = await understand(inbound(colloquial, 6), deps=deps)
    assert before is not None
    assert not any(e.entity == "product" for e in before.entities)
    async with shop.unit_of_work() as session:
        await search.add_synonyms(session, terms=[colloquial, "samovar"])
    after = await understand(inbound(colloquial, 7), deps=deps)
    assert after is not None
    assert after.intent == "product_search", after.intent
    assert any(e.entity == "product" and e.value == colloquial for e in after.entities)
    found = await say(colloquial, sender="7003", deps=deps)
    assert [c.sku for r in found.replies for c in r.cards][:1] == ["SAM-1"]
