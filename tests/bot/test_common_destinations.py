"""Ask, don't assume: a delivery question with no known country asks with buttons of the shop's common
destinations, read from the shop's own database (its latest orders, then the countries its zones serve), so no
process-wide cache needs resetting between shops or tests."""
from __future__ import annotations

from bot import HandleResult
from commerce.cross_border import served_destinations
from commerce.inventory import service as inventory
from commerce.orders import service as orders
from commerce.orders.schemas import OrderIn, OrderLineIn
from commerce.orders.service import recent_destinations
from kit.db import Database
from tests.bot.conftest import Say, payloads, texts


def countries(result: HandleResult) -> list[str]:
    return [p.removeprefix("country:set:") for p in payloads(result) if p.startswith("country:set:")]


async def test_with_no_orders_the_buttons_are_the_default_then_one_country_per_served_zone(
        shop: Database, say: Say) -> None:
    asked = await say("how much is shipping?", sender="d1")
    # DE first (the shop's default), then the first country of each served zone (EU, GB, CN, APAC, North America:
    # zones list their countries sorted); the zone that is not served (BR, RU, ...) offers none.
    assert countries(asked) == ["DE", "AT", "GB", "CN", "AU", "CA"], texts(asked)
    assert "Germany" in texts(asked) or "country" in texts(asked).lower()
    async with shop.unit_of_work() as session:
        assert await recent_destinations(session) == []
        assert await served_destinations(session, limit=8) == ["AT", "GB", "CN", "AU", "CA", "BE", "HK", "US"]


async def test_the_latest_orders_countries_come_first_most_frequent_first(shop: Database, say: Say) -> None:
    async with shop.unit_of_work() as session:
        await inventory.set_stock(session, sku="KET-1", location="SZX", on_hand=5)  # Shenzhen sends to US and JP
        for n, country in enumerate(["FR", "US", "FR", "JP", "FR", "US"]):
            await orders.create_order(session, data=OrderIn(
                channel="web", external_id=f"dest-{n}", currency="EUR", country=country,
                lines=[OrderLineIn(sku="KET-1", quantity=1)]))
        assert await recent_destinations(session) == ["FR", "US", "JP"]
        # Only the latest orders count: the last three went to JP, FR and US once each (ties by code).
        assert await recent_destinations(session, orders=3) == ["FR", "JP", "US"]
    asked = await say("how much is shipping?", sender="d2")
    assert countries(asked) == ["DE", "FR", "US", "JP", "AT", "GB"], texts(asked)


async def test_each_database_has_its_own_destinations(shop: Database, say: Say) -> None:
    # The same process answered another shop's question in the test before (no reset between tests): this shop has
    # no orders, so its buttons come from its zones only.
    asked = await say("how much is shipping?", sender="d3")
    assert countries(asked)[:2] == ["DE", "AT"]
