"""Search finds the kind of thing asked for: matches first, the rest marked as alternatives (issue 25)."""
from __future__ import annotations

from api.demo.loader import demo_data, load_catalog
from commerce.catalog.service import all_products
from commerce.search import service as search
from commerce.search.service import ProductHit, matches_first
from kit.db import Database


def hit(product_id: int, lexical: float, dense: float = 0.5) -> ProductHit:
    return ProductHit(product_id=product_id, sku=f"S{product_id}", score=lexical + dense, lexical=lexical,
                      dense=dense)


def test_hits_sharing_a_word_only_follow_the_matches_as_alternatives() -> None:
    ordered = matches_first([hit(1, 9.6), hit(2, 0.0, dense=0.9), hit(3, 9.2), hit(4, 3.3)])
    assert [(h.product_id, h.alternative) for h in ordered] == [(1, False), (3, False), (2, True), (4, True)]


def test_with_no_word_matched_there_is_nothing_to_judge_by() -> None:
    hits = [hit(1, 0.0, 0.8), hit(2, 0.0, 0.7)]
    assert matches_first(hits) == hits


async def test_running_shoes_are_the_matches_and_other_shoes_alternatives(db: Database) -> None:
    async with db.unit_of_work() as session:
        await load_catalog(session, demo_data())
    async with db.unit_of_work() as session:
        result = await search.search_products(session, query="running shoes", limit=10)
        slugs = {p.id: p.slug for p in await all_products(session)}
    matches = [slugs[h.product_id] for h in result.hits if not h.alternative]
    others = [slugs[h.product_id] for h in result.hits if h.alternative]
    assert sorted(matches) == ["lightweight-running-shoes", "trail-running-shoes"]
    assert others  # slippers, loafers...: found, but said to be alternatives
    assert [h.alternative for h in result.hits] == [False] * len(matches) + [True] * len(others)


async def test_a_size_filter_as_shoppers_name_it_finds_the_variant(db: Database) -> None:
    # The entity extractor says "EU 42" or "size S"; the catalog lists "42" and "S" (was: no result at all).
    async with db.unit_of_work() as session:
        await load_catalog(session, demo_data())
    async with db.unit_of_work() as session:
        slugs = {p.id: p.slug for p in await all_products(session)}
        for size in ("EU 42", "size 42", "42码", "42"):
            result = await search.search_products(session, query="running shoes", limit=5,
                                                  filters=search.SearchFilters(size=size))
            found = {slugs[h.product_id] for h in result.hits}
            assert "lightweight-running-shoes" in found, size
            assert all(h.sku.endswith("42") or "-42" in h.sku for h in result.hits), [h.sku for h in result.hits]
        hoodies = await search.search_products(session, query="hoodie", limit=5,
                                               filters=search.SearchFilters(size="size XL"))
        assert [slugs[h.product_id] for h in hoodies.hits][:1] == ["heavyweight-cotton-hoodie"]
        assert await search.search_products(session, query="hoodie", limit=5,
                                            filters=search.SearchFilters(size="EU 99")) == search.SearchResult()


def test_sizes_compare_as_one_size_however_written() -> None:
    assert {search.size_key(s) for s in ("EU 42", "size 42", "42码", "42", " eu42 ")} == {"42"}
    assert search.size_key("size S") == search.size_key("s")
    assert search.size_key("42-43") != search.size_key("42")


async def test_a_colour_asked_for_is_read_from_a_glaze_too_not_from_a_switch(db: Database) -> None:
    async with db.unit_of_work() as session:
        await load_catalog(session, demo_data())
    async with db.unit_of_work() as session:
        slug = {p.id: p.slug for p in await all_products(session)}
        blue = await search.search_products(session, query="mug", filters=search.SearchFilters(colour="blue"),
                                            limit=10)
        assert slug[blue.hits[0].product_id] == "handmade-stoneware-mug"  # "glaze: ocean blue"
        assert blue.hits[0].sku.startswith("MUG-SW")
        red = await search.search_products(session, query="keyboard", filters=search.SearchFilters(colour="red"),
                                           limit=10)
        assert "mechanical-keyboard-75" not in {slug[h.product_id] for h in red.hits}  # "switch: linear red"
