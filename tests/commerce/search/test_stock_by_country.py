"""Search counts stock only at the warehouse that ships to the shopper's country (issue 6)."""
from __future__ import annotations

from decimal import Decimal

from commerce.cross_border.admin import create_zone
from commerce.cross_border.schemas import ShippingServiceIn, ShippingZoneIn
from commerce.inventory.availability import available_for_country, shipping_warehouse, stock_by_reach
from commerce.search import service as search
from kit.db import Database
from tests.factories import make_product, make_shop


async def _shop(db: Database) -> None:
    """A mug stocked only in Shenzhen (ships to China), a jug only in Rotterdam (ships to Germany)."""
    standard = ShippingServiceIn(service="standard", name="Standard", currency="EUR", base_price=Decimal("5"),
                                 min_days=2, max_days=5)
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="clay-mug", title="Clay mug", skus={"MUG-1": {"SZX": 3}})
        await make_product(session, slug="clay-jug", title="Clay jug", skus={"JUG-1": {"RTM": 2}})
        await create_zone(session, data=ShippingZoneIn(code="eu", name="EU", countries=["DE"], warehouse="RTM",
                                                       services=[standard]))
        await create_zone(session, data=ShippingZoneIn(code="cn", name="China", countries=["CN"],
                                                       warehouse="SZX", services=[standard]))


async def _found(db: Database, query: str, country: str | None) -> set[str]:
    async with db.sessions() as session:
        result = await search.search_products(session, query=query, country=country, limit=10)
    return {hit.sku for hit in result.hits}


async def test_a_product_stocked_only_where_nothing_ships_to_the_shopper_is_not_found(db: Database) -> None:
    await _shop(db)
    assert await _found(db, "clay mug", "DE") == {"JUG-1"}  # the mug's only units are in Shenzhen
    assert await _found(db, "clay mug", "CN") == {"MUG-1"}
    assert await _found(db, "clay mug", "de") == {"JUG-1"}  # country codes in any case
    # Without a country (or one no zone serves) every warehouse counts: the shopper hears about
    # shipping at checkout instead of meeting an empty shop.
    assert await _found(db, "clay mug", None) == {"MUG-1", "JUG-1"}
    assert await _found(db, "clay mug", "BR") == {"MUG-1", "JUG-1"}


async def test_available_for_country_counts_the_shipping_warehouse_only(db: Database) -> None:
    await _shop(db)
    async with db.sessions() as session:
        assert await shipping_warehouse(session, country="DE") == "RTM"
        assert await shipping_warehouse(session, country="CN") == "SZX"
        assert await shipping_warehouse(session, country="BR") is None
        assert await shipping_warehouse(session, country="not a country") is None
        assert await available_for_country(session, skus=["MUG-1", "JUG-1", "NOPE"], country="DE") == {
            "MUG-1": 0, "JUG-1": 2, "NOPE": 0}
        assert await available_for_country(session, skus=["MUG-1", "JUG-1"], country="CN") == {
            "MUG-1": 3, "JUG-1": 0}
        assert await available_for_country(session, skus=["MUG-1", "JUG-1"], country=None) == {
            "MUG-1": 3, "JUG-1": 2}
        assert await available_for_country(session, skus=[], country="DE") == {}


async def test_search_and_the_catalog_share_one_country_rule(db: Database) -> None:
    from commerce.catalog.service import get_product, is_sellable_to

    async with db.unit_of_work() as session:
        await make_shop(session)
        made = await make_product(session, slug="clay-pot", title="Clay pot", skus={"POT-1": {"RTM": 3}},
                                  sellable_countries=["fr"])  # stored upper-case
        await make_product(session, slug="clay-cup", title="Clay cup", skus={"CUP-1": {"RTM": 3}})
    async with db.sessions() as session:
        pot = await get_product(session, product_id=made.id)
    for country, sold in (("FR", True), ("fr", True), (None, True), ("DE", False)):
        assert is_sellable_to(pot, country) is sold
        assert ("POT-1" in await _found(db, "clay", country)) is sold
        assert "CUP-1" in await _found(db, "clay", country)  # no list: sold everywhere


async def test_stock_by_reach_gives_the_destinations_units_and_every_locations_in_one_read(db: Database) -> None:
    await _shop(db)
    async with db.sessions() as session:
        assert await stock_by_reach(session, skus=["MUG-1", "JUG-1", "NOPE"], country="DE") == {
            "MUG-1": (0, 3), "JUG-1": (2, 2), "NOPE": (0, 0)}
        assert await stock_by_reach(session, skus=["MUG-1", "JUG-1"], country="CN") == {
            "MUG-1": (3, 3), "JUG-1": (0, 2)}
        # No warehouse for the country: every location counts for it too.
        assert await stock_by_reach(session, skus=["MUG-1"], country="BR") == {"MUG-1": (3, 3)}
        assert await stock_by_reach(session, skus=[], country="DE") == {}


async def test_a_search_for_an_assumed_country_names_the_matches_stocked_only_elsewhere(db: Database) -> None:
    await _shop(db)
    async with db.sessions() as session:
        result = await search.search_products(session, query="clay mug", country="DE", limit=10, elsewhere=True)
        assert [h.sku for h in result.hits] == ["JUG-1"]  # shares "clay": an alternative to a mug
        assert [h.sku for h in result.elsewhere] == ["MUG-1"]
        kept = await search.search_products(session, query="clay mug", country="CN", limit=10, elsewhere=True)
        assert [h.sku for h in kept.hits] == ["MUG-1"]
        assert kept.elsewhere == []  # the jug is only a loose neighbour of "clay mug": not counted
        plain = await search.search_products(session, query="clay mug", country="DE", limit=10)
        assert plain.elsewhere == []  # only asked for when the country was assumed
