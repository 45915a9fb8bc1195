from __future__ import annotations

from datetime import timedelta

import pytest

from api.workers.process import collect
from commerce.inventory import service as inventory
from kit import clock as clock_module
from kit.db import Database
from kit.settings import Settings
from tests.factories import make_product, make_shop


async def test_worker_job_releases_expired_cart_holds(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_product(session, slug="kettle", skus={"KET-1": {"RTM": 3}})
        await inventory.reserve_stock(session, sku="KET-1", quantity=2, ttl_seconds=900, reference="cart:1")
    _, jobs = collect(Settings(), db)
    expire = next(job for job in jobs if job.name == "release_expired_reservations")
    await expire.run()
    async with db.sessions() as session:
        assert (await inventory.available_stock(session, skus=["KET-1"]))["KET-1"] == 1
    real_now = clock_module.clock.now
    monkeypatch.setattr(clock_module.clock, "now", lambda: real_now() + timedelta(minutes=16))
    await expire.run()
    async with db.sessions() as session:
        assert (await inventory.available_stock(session, skus=["KET-1"]))["KET-1"] == 3
