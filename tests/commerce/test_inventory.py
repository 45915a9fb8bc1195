from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from commerce.catalog.errors import UnknownSku
from commerce.inventory import service as inventory
from commerce.inventory.errors import InsufficientStock, InvalidQuantity, ReservationClosed, StockBelowReserved
from kit import clock as clock_module
from kit.db import Database
from tests.factories import make_product, make_shop


async def _stock(db: Database, sku: str) -> tuple[int, int]:
    async with db.sessions() as session:
        levels = await inventory.stock_levels(session, skus=[sku])
    return sum(lvl.on_hand for lvl in levels), sum(lvl.reserved for lvl in levels)


async def test_reserve_commit_release_keep_counts_right(db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 5, "SZX": 2}})
    async with db.unit_of_work() as session:
        first = await inventory.reserve_stock(session, sku="KET-1", quantity=3)
        second = await inventory.reserve_stock(session, sku="KET-1", quantity=2)
    assert await _stock(db, "KET-1") == (7, 5)
    async with db.unit_of_work() as session:
        await inventory.commit_reservation(session, reservation_id=first.id)
        await inventory.release_reservation(session, reservation_id=second.id)
    assert await _stock(db, "KET-1") == (4, 0)
    async with db.unit_of_work() as session:
        with pytest.raises(ReservationClosed):
            await inventory.release_reservation(session, reservation_id=first.id)
        assert (await inventory.available_stock(session, skus=["KET-1"])) == {"KET-1": 4}


async def test_bad_requests_are_refused_and_change_nothing(db: Database) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 2}})
    async with db.unit_of_work() as session:
        with pytest.raises(UnknownSku):
            await inventory.reserve_stock(session, sku="NOPE", quantity=1)
        with pytest.raises(InvalidQuantity):
            await inventory.reserve_stock(session, sku="KET-1", quantity=0)
        with pytest.raises(InvalidQuantity):
            await inventory.reserve_stock(session, sku="KET-1", quantity=-3)
        with pytest.raises(InsufficientStock) as excinfo:
            await inventory.reserve_stock(session, sku="KET-1", quantity=3)
        assert excinfo.value.extra["available"] == 2
        await inventory.reserve_stock(session, sku="KET-1", quantity=2)
        with pytest.raises(StockBelowReserved):
            await inventory.adjust_stock(session, sku="KET-1", location="RTM", delta=-1)
    assert await _stock(db, "KET-1") == (2, 2)


@pytest.mark.parametrize("clients", [50])
async def test_fifty_concurrent_reservations_for_last_ten_units(db: Database, clients: int) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 10}})

    async def one_client(n: int) -> bool:
        try:
            async with db.unit_of_work() as session:
                await inventory.reserve_stock(session, sku="KET-1", quantity=1, reference=f"client-{n}")
            return True
        except InsufficientStock:
            return False

    results = await asyncio.gather(*(one_client(n) for n in range(clients)))
    assert sum(results) == 10
    assert await _stock(db, "KET-1") == (10, 10)
    async with db.sessions() as session:
        assert await inventory.available_stock(session, skus=["KET-1"]) == {"KET-1": 0}


async def test_expired_reservations_are_released(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 4}})
        await inventory.reserve_stock(session, sku="KET-1", quantity=3, ttl_seconds=60)
        await inventory.reserve_stock(session, sku="KET-1", quantity=1)  # an order's hold: no expiry
    real_now = clock_module.clock.now
    monkeypatch.setattr(clock_module.clock, "now", lambda: real_now() + timedelta(minutes=2))
    async with db.unit_of_work() as session:
        assert await inventory.release_expired_reservations(session) == 1
    async with db.unit_of_work() as session:
        assert await inventory.release_expired_reservations(session) == 0
    assert await _stock(db, "KET-1") == (4, 1)
