"""Product search on the demo catalog in the database: ranking, merchant controls live, the search report."""
from __future__ import annotations

from typing import Any

import pytest

from api.demo.loader import demo_data, load_catalog
from commerce.catalog.service import all_products
from commerce.search import service as search
from kit.db import Database
from kit.errors import InvalidInput, NotFound


async def load(db: Database, *, only: int | None = None) -> dict[str, int]:
    data: dict[str, Any] = demo_data()
    if only is not None:
        data["products"] = data["products"][:only]
    async with db.unit_of_work() as session:
        await load_catalog(session, data)
    async with db.unit_of_work() as session:
        return {p.slug: p.id for p in await all_products(session)}


async def slugs_for(db: Database, query: str, **kwargs: Any) -> list[str]:
    async with db.unit_of_work() as session:
        result = await search.search_products(session, query=query, limit=10, **kwargs)
        names = {p.id: p.slug for p in await all_products(session)}
    return [names[h.product_id] for h in result.hits]


async def test_search_finds_products_in_either_language_and_with_typos(db: Database) -> None:
    await load(db)
    assert (await slugs_for(db, "electirc kettle"))[0] == "gooseneck-electric-kettle"
    assert (await slugs_for(db, "紫砂壶"))[0] == "yixing-clay-teapot"
    assert (await slugs_for(db, "power bank", country="DE"))[0] == "power-bank-20000-pd"


async def test_merchant_synonyms_apply_on_the_next_search(db: Database) -> None:
    await load(db)
    assert "eva-slide-sandals" not in await slugs_for(db, "zoris")
    async with db.unit_of_work() as session:
        group = await search.add_synonyms(session, terms=["zoris", "slide sandals"])
    assert (await slugs_for(db, "zoris"))[0] == "eva-slide-sandals"
    async with db.unit_of_work() as session:
        await search.delete_synonyms(session, synonym_id=group.id)
    assert "eva-slide-sandals" not in await slugs_for(db, "zoris")


async def test_boost_bury_and_pin(db: Database) -> None:
    await load(db)
    before = await slugs_for(db, "running shoes")
    assert before[0] in {"lightweight-running-shoes", "trail-running-shoes"}
    async with db.unit_of_work() as session:
        await search.add_rule(session, kind="bury", product_slug=before[0], query="running shoes")
        await search.add_rule(session, kind="pin", product_slug="felted-wool-slippers", query="Running  Shoes",
                              position=2)
    after = await slugs_for(db, "running shoes")
    assert after[1] == "felted-wool-slippers"
    assert after.index(before[0]) > after.index(before[1])
    assert (await slugs_for(db, "trail shoes"))[0] == "trail-running-shoes"  # rules are per query
    async with db.unit_of_work() as session:
        rule = await search.add_rule(session, kind="boost", product_slug="classic-canvas-sneakers", query=None)
    assert (await slugs_for(db, "shoes"))[0] == "classic-canvas-sneakers"
    async with db.unit_of_work() as session:
        await search.delete_rule(session, rule_id=rule.id)
        with pytest.raises(InvalidInput):
            await search.add_rule(session, kind="pin", product_slug="classic-canvas-sneakers", query=None)
        with pytest.raises(NotFound):
            await search.add_rule(session, kind="boost", product_slug="no-such-thing")
        with pytest.raises(InvalidInput):
            await search.add_synonyms(session, terms=["same", "SAME"])


async def test_recorded_searches_make_the_report(db: Database) -> None:
    await load(db)
    async with db.unit_of_work() as session:
        for _ in range(3):
            await search.search_products(session, query="flux capacitor", channel="telegram")
        await search.search_products(session, query="火箭发射台", channel="webchat")
        opened = await search.search_products(session, query="wok", channel="webchat")
        await search.search_products(session, query="teapot", channel="webchat")
        assert opened.search_id is not None
        await search.mark_search_used(session, search_id=opened.search_id)
        await search.search_products(session, query="kettle")  # no channel: not a shopper search
    async with db.unit_of_work() as session:
        report = await search.search_report(session, days=7)
    zero = {(r.query, r.language): r.searches for r in report.zero_results}
    assert zero == {("flux capacitor", "en"): 3, ("火箭发射台", "zh"): 1}
    assert [r.query for r in report.abandoned] == ["teapot"]


async def test_bad_queries_and_a_one_product_catalog(db: Database) -> None:
    await load(db, only=1)
    assert await slugs_for(db, "power bank") == ["power-bank-20000-pd"]
    for query in ["😀🎉🔥", "x" * 500, "' OR 1=1; DROP TABLE products; --", "<img src=x onerror=alert(1)>"]:
        assert await slugs_for(db, query, channel="web") == []
    assert await slugs_for(db, "") == ["power-bank-20000-pd"]
    async with db.unit_of_work() as session:
        report = await search.search_report(session)
    assert sum(r.searches for r in report.zero_results) == 4
    assert all(len(r.query) <= 200 for r in report.zero_results)
