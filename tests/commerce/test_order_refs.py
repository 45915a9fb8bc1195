"""Public order references: unguessable in shape, unique, found however a shopper types them, and given to
orders that existed before the column did."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from api.migrations import upgrade
from commerce.orders import service as orders
from commerce.orders.errors import OrderNotFound
from commerce.orders.refs import ALPHABET, new_public_ref, parse_public_ref, public_ref_in
from commerce.orders.schemas import OrderIn, OrderLineIn
from kit.db import Database
from tests.factories import make_product, make_shop
from tests.migrating import migrate_to

SHAPE = re.compile(rf"ST-[{ALPHABET}]{{5}}-[{ALPHABET}]{{5}}")


def test_a_reference_is_ten_random_crockford_characters() -> None:
    refs = [new_public_ref() for _ in range(2000)]
    assert all(SHAPE.fullmatch(ref) for ref in refs)
    assert len(set(refs)) == len(refs)
    bodies = "".join(ref.replace("-", "")[2:] for ref in refs)
    assert set(bodies) == set(ALPHABET)  # every character is used: 32^10 = 2^50 references
    assert not set(bodies) & set("ILOU")


@pytest.mark.parametrize("typed", ["ST-7K3MQ-9XPAB", "st-7k3mq-9xpab", "ST7K3MQ9XPAB", "7K3MQ9XPAB", "7k3mq 9xpab",
                                   "#ST 7K3MQ 9XPAB", " st-7K3MQ9XPAB ", "ST-7K3MQ-9XPAB".lower()])
def test_a_reference_is_read_in_any_case_with_or_without_dashes(typed: str) -> None:
    assert parse_public_ref(typed) == "ST-7K3MQ-9XPAB"


def test_crockford_confusions_are_read_as_the_digit() -> None:
    assert parse_public_ref("ST-1O2IL-3o4il") == "ST-10211-30411"


@pytest.mark.parametrize("typed", ["ST-7K3MQ-9XPA", "ST-7K3MQ-9XPABC", "ST-7K3MQ-9XPAU", "10023", "", "ST",
                                   "kettle"])
def test_other_text_is_not_a_reference(typed: str) -> None:
    assert parse_public_ref(typed) is None


def test_a_reference_named_in_a_message() -> None:
    assert public_ref_in("where is my order st-7k3mq-9xpab?") == "ST-7K3MQ-9XPAB"
    assert public_ref_in("7k3mq9xpab") == "ST-7K3MQ-9XPAB"
    assert public_ref_in("where is order #10023") is None
    assert public_ref_in("1234567890") is None  # digits alone are an order number
    assert public_ref_in("strongkettle") is None  # a word is not a reference


def _order(external_id: str) -> OrderIn:
    return OrderIn(channel="web", external_id=external_id, currency="EUR", email="anna@example.com",
                   postcode="10115", country="DE", shipping=Decimal("4.90"),
                   lines=[OrderLineIn(sku="KET-1", quantity=1)])


async def test_every_new_order_gets_its_own_reference(db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 50}}, price="59.90")
        placed = [(await orders.create_order(session, data=_order(f"w-{i}")))[0] for i in range(20)]
    refs = [order.public_ref for order in placed]
    assert all(SHAPE.fullmatch(ref) for ref in refs)
    assert len(set(refs)) == len(refs)
    async with db.sessions() as session:
        found = await orders.get_order_by_public_ref(session, public_ref=refs[3].lower().replace("-", ""))
        assert found.id == placed[3].id
        with pytest.raises(OrderNotFound):
            await orders.get_order_by_public_ref(session, public_ref=placed[3].number)
        with pytest.raises(OrderNotFound):
            await orders.get_order_by_public_ref(session, public_ref="ST-00000-00000")


async def _check_backfill(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database.engine)
        async with database.unit_of_work() as session:
            await make_shop(session)
            await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 50}}, price="59.90")
            numbers = [(await orders.create_order(session, data=_order(f"w-{i}")))[0].number for i in range(12)]
        await migrate_to(database, url, "downgrade", "commerce_0502")  # orders as they were before refs
        async with database.engine.begin() as connection:
            columns = [c["name"] for c in await connection.run_sync(lambda sync: inspect(sync).get_columns("orders"))]
        assert "public_ref" not in columns
        await migrate_to(database, url, "upgrade", "heads")
        async with database.engine.begin() as connection:
            rows = (await connection.execute(text("SELECT number, public_ref FROM orders"))).all()
            assert sorted(number for number, _ in rows) == sorted(numbers)
            refs = [ref for _, ref in rows]
            assert all(ref is not None and SHAPE.fullmatch(ref) for ref in refs)
            assert len(set(refs)) == len(refs)
            with pytest.raises(IntegrityError):  # the database keeps them unique
                await connection.execute(text("UPDATE orders SET public_ref = :ref"), {"ref": refs[0]})
        async with database.sessions() as session:
            found = await orders.get_order_by_public_ref(session, public_ref=refs[5])
        assert found.number == rows[5][0]
        async with database.unit_of_work() as session:  # and new orders still get one after the backfill
            new, _ = await orders.create_order(session, data=_order("w-new"))
        assert SHAPE.fullmatch(new.public_ref)
        assert new.public_ref not in refs
    finally:
        await database.dispose()


@pytest.mark.slow
async def test_migration_backfills_existing_orders(unmigrated_url: str) -> None:
    await _check_backfill(unmigrated_url)
