"""The search skill's pages of cards: what they show, and what a search turn reads to show them."""
from __future__ import annotations

from dataclasses import replace

from sqlalchemy import event

from bot import BotDeps
from commerce.catalog import service as catalog
from commerce.inventory import service as inventory
from commerce.money import format_money
from kit.db import Database
from tests.bot.conftest import Say, payloads


async def _statements_of(shop: Database, say: Say, text: str, **kwargs: object) -> tuple[list[str], object]:
    statements: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(shop.engine.sync_engine, "before_cursor_execute", note)
    try:
        result = await say(text, **kwargs)
    finally:
        event.remove(shop.engine.sync_engine, "before_cursor_execute", note)
    return statements, result


async def test_a_search_turn_reads_stock_once_and_its_cards_in_one_statement(say: Say, shop: Database) -> None:
    async with shop.unit_of_work() as session:
        await inventory.set_stock(session, sku="KET-TRAVEL", location="RTM", on_hand=2)
    await say("I am looking for a kettle", sender="warm-up")  # the process's index follows the catalog first
    statements, result = await _statements_of(shop, say, "I am looking for a kettle", sender="cards-1")
    cards = [c for r in result.replies for c in r.cards]  # type: ignore[attr-defined]
    assert sorted(c.sku for c in cards) == ["KET-1", "KET-TRAVEL"]
    async with shop.sessions() as session:
        for card in cards:  # what a card built from the catalog's own reads shows
            variant = await catalog.get_variant(session, sku=card.sku)
            assert card.product_id == variant.product_id
            assert card.title == variant.product.title["en"]
            assert card.price_text == format_money(catalog.variant_price(variant, variant.product), "EUR", "en")
    assert f"product:details:{cards[0].product_id}" in payloads(result)  # type: ignore[arg-type]
    stock_reads = [s for s in statements if s.startswith("SELECT") and "FROM stock_levels" in s]
    assert len(stock_reads) == 1  # the search's own: page 1 does not read it again
    card_reads = [s for s in statements if s.startswith("SELECT") and ("FROM variants" in s or "FROM products" in s)
                  and "count(products.id)" not in s]  # not the catalog signature
    assert len(card_reads) == 1


async def test_a_later_page_leaves_out_hits_sold_out_since_the_search(say: Say, shop: Database,
                                                                     bot_deps: BotDeps) -> None:
    one_per_page = replace(bot_deps, page_size=1)
    async with shop.unit_of_work() as session:
        await inventory.set_stock(session, sku="KET-TRAVEL", location="RTM", on_hand=2)
    first = await say("I am looking for a kettle", sender="pages-1", deps=one_per_page)
    [shown] = [c.sku for r in first.replies for c in r.cards]
    assert "search:page:2" in payloads(first)
    other = "KET-TRAVEL" if shown == "KET-1" else "KET-1"
    second = await say(kind="callback", payload="search:page:2", sender="pages-1", deps=one_per_page)
    assert [c.sku for r in second.replies for c in r.cards] == [other]
    async with shop.unit_of_work() as session:
        await inventory.set_stock(session, sku=other, location="RTM", on_hand=0)
    sold_out = await say(kind="callback", payload="search:page:2", sender="pages-1", deps=one_per_page)
    assert [c.sku for r in sold_out.replies for c in r.cards] == []
