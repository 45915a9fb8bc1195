"""The search skill's pages of cards: what they show, and what a search turn reads to show them."""
from __future__ import annotations

from dataclasses import replace

from sqlalchemy import event

from bot import BotDeps
from commerce.catalog import service as catalog
from commerce.inventory import service as inventory
from commerce.money import format_money
from kit.db import Database
from tests.bot.conftest import Say, payloads, texts


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


async def test_a_search_with_no_country_says_the_one_assumed_and_offers_destinations(say: Say) -> None:
    found = await say("I am looking for a kettle", sender="assumed-1")
    assert [c.sku for r in found.replies for c in r.cards] == ["KET-1"]
    assert "Stock above is for delivery to Germany" in texts(found)
    offered = [p for p in payloads(found) if p.startswith("search:country:")]
    assert offered[0] == "search:country:DE"
    assert len(offered) > 1
    again = await say(kind="callback", payload="search:country:DE", sender="assumed-1")
    assert "delivering to Germany" in texts(again)
    assert [c.sku for r in again.replies for c in r.cards] == ["KET-1"]  # the last search, run again
    assert "Stock above" not in texts(again)  # the shopper chose: nothing is assumed any more
    later = await say("I am looking for a kettle", sender="assumed-1")
    assert not any(p.startswith("search:country:") for p in payloads(later))


async def test_products_stocked_only_for_other_destinations_are_not_called_none(say: Say) -> None:
    # The teapot's only units are in Shenzhen, which does not ship to Germany (the shop's default).
    asked = await say("glass teapot", sender="assumed-2")
    assert "Nothing" in texts(asked)
    assert "1 match is in stock for other destinations" in texts(asked)
    assert "Germany" in texts(asked)
    assert not [c for r in asked.replies for c in r.cards]
    assert "search:country:AU" in payloads(asked)
    shipped = await say(kind="callback", payload="search:country:AU", sender="assumed-2")  # Shenzhen ships there
    assert [c.sku for r in shipped.replies for c in r.cards] == ["POT-1"]
    named = await say("glass teapot to Germany", sender="assumed-3")  # a country named is not assumed
    assert "in stock for delivery to Germany" in texts(named)
    assert "other destinations" not in texts(named)
    assert not any(p.startswith("search:country:") for p in payloads(named))


async def test_a_search_country_button_refuses_what_is_not_a_country_code(say: Say) -> None:
    refused = await say(kind="callback", payload="search:country:Germany", sender="assumed-4")
    assert "country" in texts(refused).lower()
    assert not [c for r in refused.replies for c in r.cards]
