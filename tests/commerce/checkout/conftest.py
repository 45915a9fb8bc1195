"""The cross-border test shop (round exchange rates, shipped rules) with stock and sales channels, the clock on
the day the rates are from."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from commerce.catalog import service as catalog
from commerce.catalog.schemas import ProductIn, VariantIn
from commerce.channels import service as channels
from commerce.inventory import service as inventory
from kit.clock import clock
from kit.db import Database
from tests.commerce.cross_border.conftest import ON, make_cross_border_shop

NOW = datetime(ON.year, ON.month, ON.day, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    return NOW


async def make_checkout_shop(db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_cross_border_shop(session)
        await inventory.create_location(session, code="RTM", name="Rotterdam", country="NL")
        await inventory.create_location(session, code="SZX", name="Shenzhen", country="CN")
        for code in ("web", "telegram", "webchat"):
            await channels.create_channel(session, code=code, name=code.title(), kind=code)
        await catalog.create_product(session, data=ProductIn(
            slug="hoodie", category="clothing", title={"en": "Hoodie", "zh": "连帽衫"}, description={},
            base_price=__import__("decimal").Decimal("50.00"), currency="EUR", weight_grams=600,
            variants=[VariantIn(sku="HOOD-RED-M", attributes={"colour": "Red", "size": "M"}),
                      VariantIn(sku="HOOD-BLU-L", attributes={"colour": "Blue", "size": "L"})]))
        for sku in ("TEE-1", "JKT-1", "TEA-1", "BAG-150", "SPK-1", "HOOD-RED-M", "HOOD-BLU-L"):
            await inventory.set_stock(session, sku=sku, location="RTM", on_hand=5)


@pytest.fixture
async def shop(db: Database) -> Database:
    await make_checkout_shop(db)
    return db
