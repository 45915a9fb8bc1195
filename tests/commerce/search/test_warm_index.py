"""The warm search index: no catalog read per search, only changed products re-read, paging over stock."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, update

from api.demo.loader import demo_data, load_catalog
from commerce.catalog import service as catalog
from commerce.catalog.models import Product
from commerce.catalog.schemas import ProductIn, VariantIn
from commerce.inventory import service as inventory
from commerce.search import service as search
from commerce.search.models import SearchSynonym
from kit.clock import utcnow
from kit.db import Database


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()).lower())

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)


async def ids(db: Database, query: str, **kwargs: Any) -> tuple[list[int], int]:
    async with db.sessions() as session:
        result = await search.search_products(session, query=query, **kwargs)
    return [h.product_id for h in result.hits], result.total


class FakeClock:
    """Seconds that move only when the test says so (the signature's time to live, without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock()
    before = search.warm.clock
    search.warm.clock = fake
    try:
        yield fake
    finally:
        search.warm.clock = before


async def test_a_warm_search_reads_no_product_rows(db: Database, clock: FakeClock) -> None:
    async with db.unit_of_work() as session:
        await load_catalog(session, demo_data())
    await ids(db, "kettle")  # warms the index
    with statements(db) as seen:
        found, _ = await ids(db, "electric kettle", limit=10)
    assert found
    # Within the signature's time to live and with no product written since: no products query at all.
    assert not [s for s in seen if "from products" in s]
    assert not any("from variants" in s for s in seen)
    assert any("stock_levels" in s for s in seen)

    clock.now += search.SIGNATURE_TTL
    with statements(db) as seen:
        assert (await ids(db, "electric kettle", limit=10))[0] == found
    reads_products = [s for s in seen if "from products" in s]
    # Then only the signature (count, max id, max updated_at); never titles, descriptions or variants.
    assert len(reads_products) == 1, reads_products
    assert "count(" in reads_products[0]
    assert not any("from variants" in s for s in seen)


async def _behind_our_back(db: Database, sql: str) -> None:
    """As another process would: straight through the driver, unseen by this process's SQLAlchemy events."""
    def write(connection: Any) -> None:
        driver = connection.connection.dbapi_connection
        cursor = driver.cursor()
        cursor.execute(sql)
        cursor.close()
        driver.commit()

    async with db.engine.connect() as connection:
        await connection.run_sync(write)


async def _retire_behind_our_back(db: Database, product_id: int) -> None:
    await _behind_our_back(db, f"UPDATE products SET active = false WHERE id = {int(product_id)}")


async def test_product_writes_are_seen_at_once_here_and_within_the_ttl_from_elsewhere(
        db: Database, clock: FakeClock) -> None:
    data = demo_data()
    async with db.unit_of_work() as session:
        await load_catalog(session, data)
    kettles, _ = await ids(db, "kettle", limit=50)
    assert kettles
    # A write in this process (ORM or a Core UPDATE) reaches the very next search, whatever the clock says.
    async with db.unit_of_work() as session:
        await session.execute(update(Product).where(Product.id == kettles[0]).values(active=False))
    assert kettles[0] not in (await ids(db, "kettle", limit=50))[0]
    async with db.unit_of_work() as session:
        await session.execute(update(Product).where(Product.id == kettles[0]).values(
            active=True, updated_at=utcnow() + timedelta(seconds=1)))
    assert kettles[0] in (await ids(db, "kettle", limit=50))[0]
    # Another process's write: searches may show the old catalog until the signature's time to live ends.
    await _retire_behind_our_back(db, kettles[0])
    assert kettles[0] in (await ids(db, "kettle", limit=50))[0]
    clock.now += search.SIGNATURE_TTL
    assert kettles[0] not in (await ids(db, "kettle", limit=50))[0]


async def test_merchant_controls_are_read_with_the_signature_and_seen_like_product_writes(
        db: Database, clock: FakeClock) -> None:
    async with db.unit_of_work() as session:
        await load_catalog(session, {**demo_data(), "synonyms": []})  # the merchant's own groups only
    kettles, _ = await ids(db, "kettle", limit=50)
    assert kettles
    assert (await ids(db, "zoris", limit=50))[0] == []
    # A control changed in this process reaches the very next search, whatever the clock says.
    async with db.unit_of_work() as session:
        await search.add_synonyms(session, terms=["zoris", "kettle"])
    with statements(db) as seen:
        assert (await ids(db, "zoris", limit=50))[0] == kettles
    [signature] = [s for s in seen if "search_settings_version" in s]
    assert "count(products.id)" in signature  # the version comes with the signature, not in a statement of its own
    with statements(db) as seen:  # within the time to live: neither is read
        assert (await ids(db, "zoris", limit=50))[0] == kettles
    assert not [s for s in seen if "search_settings_version" in s or "from products" in s]
    # Another process's change: seen within the signature's time to live, as its product writes are.
    async with db.unit_of_work() as session:
        session.add(SearchSynonym(terms=["yoyo", "kettle"], created_at=utcnow()))
    await _behind_our_back(db, "UPDATE search_settings_version SET version = version + 1 WHERE id = 1")
    assert (await ids(db, "yoyo", limit=50))[0] == []
    clock.now += search.SIGNATURE_TTL
    assert (await ids(db, "yoyo", limit=50))[0] == kettles


async def test_new_changed_and_retired_products_reach_the_next_search(db: Database) -> None:
    data = demo_data()
    async with db.unit_of_work() as session:
        await load_catalog(session, data)
    assert (await ids(db, "hoverboard"))[0] == []
    async with db.unit_of_work() as session:
        created = await catalog.create_product(session, data=ProductIn(
            slug="self-balancing-hoverboard", category=data["products"][0]["category"],
            title={"en": "Self-balancing Hoverboard"}, description={"en": "Two wheels."}, tags=["hoverboard"],
            base_price=Decimal("199"), currency="EUR", variants=[VariantIn(sku="HOVER-1")]))
        await inventory.set_stock(session, sku="HOVER-1", location=data["locations"][0]["code"], on_hand=2)
    with statements(db) as seen:
        assert (await ids(db, "hoverboard"))[0] == [created.id]
    # Only the new product was loaded in full (one chunk), not the catalog.
    assert sum(1 for s in seen if s.startswith("select products.id, products.slug")) == 1

    async with db.unit_of_work() as session:
        await session.execute(update(Product).where(Product.id == created.id).values(
            title={"en": "Self-balancing Scooter"}, updated_at=utcnow() + timedelta(seconds=1)))
    assert (await ids(db, "hoverboard scooter"))[0] == [created.id]
    assert (await ids(db, "self-balancing hoverboard"))[0] == [created.id]  # the tag still says hoverboard
    assert (await ids(db, "scooter"))[0] == [created.id]

    async with db.unit_of_work() as session:
        await session.execute(update(Product).where(Product.id == created.id).values(active=False))
    assert (await ids(db, "scooter")) == ([], 0)


async def test_pages_follow_one_ranking_and_sold_out_products_never_show(db: Database) -> None:
    async with db.unit_of_work() as session:
        await load_catalog(session, demo_data())
    everything, total = await ids(db, "", limit=50)
    assert total >= len(everything) > 20
    pages: list[int] = []
    for offset in range(0, 30, 7):
        page, _ = await ids(db, "", limit=7, offset=offset)
        pages.extend(page)
    assert pages == everything[:len(pages)]
    # Sell out the first product: it leaves every page, and the count follows.
    async with db.sessions() as session:
        first = await catalog.get_product(session, product_id=everything[0])
    async with db.unit_of_work() as session:
        for variant in first.variants:
            for level in await inventory.stock_levels(session, skus=[variant.sku]):
                await inventory.set_stock(session, sku=variant.sku, location=level.location, on_hand=0)
    after, after_total = await ids(db, "", limit=50)
    assert everything[0] not in after
    assert after_total == total - 1


async def test_a_filtered_search_reads_stock_only_for_the_variants_of_that_colour_and_size(db: Database) -> None:
    data = demo_data()
    async with db.unit_of_work() as session:
        await load_catalog(session, data)
    attributes = {v["sku"]: v.get("attributes", {}) for p in data["products"] for v in p["variants"]}
    wanted = search.SearchFilters(colour="black", size="L")
    await ids(db, "hoodie", filters=wanted)  # warms the index
    asked: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "stock_levels" in statement:
            values = parameters.values() if isinstance(parameters, dict) else parameters
            asked.extend(v for v in values if isinstance(v, str) and v in attributes)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        async with db.sessions() as session:
            result = await search.search_products(session, query="hoodie", filters=wanted, limit=50)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
    assert result.hits
    assert "HOOD-HW-BLK-L" in [h.sku for h in result.hits]
    assert asked
    for sku in [*asked, *(h.sku for h in result.hits)]:
        assert attributes[sku]["colour"] == "black", sku
        assert attributes[sku]["size"] == "L", sku


async def test_a_renamed_category_is_searched_by_its_new_name(db: Database, clock: FakeClock) -> None:
    from tests.factories import make_product, make_shop

    async with db.unit_of_work() as session:
        await make_shop(session)  # category home-kitchen, "Home & kitchen" / 家居厨房
        kettle = await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 3}})
        mug = await make_product(session, slug="mug", skus={"MUG-1": {"RTM": 3}})
    assert (await ids(db, "barware"))[0] == []  # the index is warm, without that word
    assert (await ids(db, "家居"))[0] != []
    async with db.unit_of_work() as session:
        renamed = await catalog.rename_category(session, slug="home-kitchen",
                                                name={"en": "Barware", "zh": "酒吧用品"})
    assert renamed.updated_at is not None
    assert sorted((await ids(db, "barware"))[0]) == sorted([kettle.id, mug.id])  # seen at once in this process
    assert sorted((await ids(db, "酒吧用品"))[0]) == sorted([kettle.id, mug.id])
    assert (await ids(db, "家居"))[0] == []  # the old name is gone from the index
    # Another process renames it: seen within the signature's time to live, like its product writes.
    later = utcnow() + timedelta(seconds=5)
    stamp = later.strftime("%Y-%m-%d %H:%M:%S.%f") + ("" if db.engine.dialect.name == "sqlite" else "+00:00")
    await _behind_our_back(db, "UPDATE categories SET name = '{\"en\": \"Glassware\"}', "
                               f"updated_at = '{stamp}' WHERE slug = 'home-kitchen'")
    clock.now += search.SIGNATURE_TTL
    assert sorted((await ids(db, "glassware"))[0]) == sorted([kettle.id, mug.id])
    assert (await ids(db, "barware"))[0] == []


async def test_renaming_a_category_checks_its_names(db: Database) -> None:
    from kit.errors import ShopTalkError
    from tests.factories import make_shop

    async with db.unit_of_work() as session:
        await make_shop(session)
        with pytest.raises(ShopTalkError):
            await catalog.rename_category(session, slug="no-such-category", name={"en": "Anything"})
        with pytest.raises(ShopTalkError):
            await catalog.rename_category(session, slug="home-kitchen", name={"en": "  "})
