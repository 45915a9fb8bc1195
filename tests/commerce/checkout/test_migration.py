from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import inspect, text

from api.migrations import upgrade
from commerce.orders import service as orders
from commerce.orders.schemas import OrderIn, OrderLineIn
from kit.db import Database
from tests.factories import make_product, make_shop
from tests.migrating import migrate_to


@pytest.mark.slow
async def test_checkout_columns_and_tables_go_and_come_back(unmigrated_url: str) -> None:
    database = Database(unmigrated_url)
    try:
        await upgrade(database.engine)
        async with database.unit_of_work() as session:
            await make_shop(session)
            await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 5}}, price="59.90")
            order, _ = await orders.create_order(session, data=OrderIn(
                channel="web", external_id="m-1", currency="EUR", country="US", shipping=Decimal("10"),
                duties=Decimal("5"), due_on_delivery=Decimal("5"), incoterm="DAP",
                lines=[OrderLineIn(sku="KET-1", quantity=1)]))
        assert order.total == Decimal("69.90")
        await migrate_to(database, unmigrated_url, "downgrade", "commerce_0601")

        def shape(sync: object) -> tuple[list[str], list[str]]:
            inspector = inspect(sync)
            return [c["name"] for c in inspector.get_columns("orders")], inspector.get_table_names()

        async with database.engine.begin() as connection:
            columns, tables = await connection.run_sync(shape)
        assert "due_on_delivery" not in columns
        assert "payments" not in tables
        await migrate_to(database, unmigrated_url, "upgrade", "heads")
        async with database.engine.begin() as connection:
            columns, tables = await connection.run_sync(shape)
            total, due = (await connection.execute(text("SELECT total, due_on_delivery FROM orders"))).one()
        assert {"payments", "payment_events", "payment_refunds", "payment_methods", "delivery_addresses"} <= set(tables)
        assert (round(Decimal(str(total)), 2), round(Decimal(str(due)), 2)) == (Decimal("69.90"), Decimal(0))
    finally:
        await database.dispose()
