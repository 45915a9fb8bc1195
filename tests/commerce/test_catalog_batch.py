"""Batch product reads (a page of product cards): same products as one-by-one reads, fixed statement count."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import event

from commerce.catalog import service as catalog
from kit.db import Database
from tests.factories import make_product, make_shop


@contextmanager
def _counting(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)


async def _three_products(db: Database) -> list[int]:
    async with db.unit_of_work() as session:
        await make_shop(session)
        ids = []
        for n in range(3):
            product = await make_product(session, slug=f"kettle-{n}", price=f"{10 + n}.50",
                                         skus={f"KET-{n}-A": {"RTM": 1}, f"KET-{n}-B": {"RTM": 2}})
            ids.append(product.id)
    return ids


async def test_get_products_loads_what_get_product_loads(db: Database) -> None:
    ids = await _three_products(db)
    async with db.sessions() as session:
        batch = await catalog.get_products(session, product_ids=[ids[2], ids[0], ids[2], 999_999])
        assert sorted(batch) == sorted([ids[0], ids[2]])  # duplicates once, unknown ids left out
        for product_id, product in batch.items():
            assert product.id == product_id
            assert [v.sku for v in product.variants] == [f"KET-{ids.index(product_id)}-A",
                                                         f"KET-{ids.index(product_id)}-B"]
            assert product.category.slug == "home-kitchen"  # loaded: lazy="raise" would raise otherwise
            assert catalog.variant_price(product.variants[0], product) == Decimal(f"{10 + ids.index(product_id)}.50")
    async with db.sessions() as session:
        one = await catalog.get_product(session, product_id=ids[0])
        expected = (one.slug, one.title, [(v.sku, v.attributes, v.price) for v in one.variants], one.category.slug)
    async with db.sessions() as session:
        other = (await catalog.get_products(session, product_ids=[ids[0]]))[ids[0]]
        got = (other.slug, other.title, [(v.sku, v.attributes, v.price) for v in other.variants],
               other.category.slug)
    assert got == expected


async def test_get_products_statements_do_not_grow_with_the_page(db: Database) -> None:
    ids = await _three_products(db)
    async with db.sessions() as session:
        with _counting(db) as statements:
            assert await catalog.get_products(session, product_ids=[]) == {}
        assert statements == []
        with _counting(db) as one:
            await catalog.get_products(session, product_ids=ids[:1])
    async with db.sessions() as session:
        with _counting(db) as three:
            await catalog.get_products(session, product_ids=ids)
    selects = [s for s in three if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == len([s for s in one if s.lstrip().upper().startswith("SELECT")]) == 2
