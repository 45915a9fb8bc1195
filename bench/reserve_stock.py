"""Reservation throughput and latency with concurrent clients, and oversold units (must be 0).

    python bench/reserve_stock.py [--clients 32] [--seconds 10] [--postgres URL]

Prints one JSON object with a result per backend (SQLite always; PostgreSQL when a URL is given).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from typing import Any

from _common import percentile, scratch_postgres

from api.migrations import upgrade
from commerce.channels import register_stock_listener
from commerce.inventory import service as inventory
from commerce.inventory.errors import InsufficientStock
from kit.db import Database
from tests.factories import make_product, make_shop

SKUS = 20
UNITS_PER_SKU = 400


async def run_backend(url: str, *, clients: int, seconds: float) -> dict[str, Any]:
    database = Database(url, pool_size=clients)
    await upgrade(database.engine)
    async with database.unit_of_work() as session:
        await make_shop(session)
        for n in range(SKUS):
            await make_product(session, slug=f"bench-{n}", skus={f"B-{n}": {"RTM": UNITS_PER_SKU}})
    latencies: list[float] = []
    reserved_units = 0
    refused = 0
    deadline = time.perf_counter() + seconds

    async def client(index: int) -> None:
        nonlocal reserved_units, refused
        n = index
        while time.perf_counter() < deadline:
            sku = f"B-{n % SKUS}"
            n += 7
            start = time.perf_counter()
            try:
                async with database.unit_of_work() as session:
                    await inventory.reserve_stock(session, sku=sku, quantity=1, reference=f"bench-{index}")
                reserved_units += 1
            except InsufficientStock:
                refused += 1
            latencies.append((time.perf_counter() - start) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    async with database.sessions() as session:
        levels = await inventory.stock_levels(session, skus=[f"B-{n}" for n in range(SKUS)])
    await database.dispose()
    oversold = sum(max(0, lvl.reserved - lvl.on_hand) for lvl in levels)
    recorded = sum(lvl.reserved for lvl in levels)
    return {
        "clients": clients, "seconds": round(elapsed, 2), "reservations": reserved_units, "refused": refused,
        "reservations_per_s": round(reserved_units / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.5), 2), "p99_ms": round(percentile(latencies, 0.99), 2),
        "oversold_units": oversold, "lost_reservations": reserved_units - recorded,
    }


async def main() -> None:
    register_stock_listener()  # as in the API: every stock change asks whether a channel wants a push
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--postgres", default=None, help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    results: dict[str, Any] = {"benchmark": "reserve_stock", "skus": SKUS, "units_per_sku": UNITS_PER_SKU}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = await run_backend(f"sqlite+aiosqlite:///{tmp}/bench.db", clients=args.clients,
                                              seconds=args.seconds)
    if args.postgres:
        async with scratch_postgres(args.postgres, "shoptalk_bench") as url:
            results["postgres"] = await run_backend(url, clients=args.clients, seconds=args.seconds)
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
