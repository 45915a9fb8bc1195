"""Multichannel stock sync under load: orders/s, oversold units, push lag, coalescing, and a worker killed -9.

    python bench/stock_sync.py [--duration 30] [--skus 1000] [--streams 20] [--workers 2]
                               [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Three channels on 127.0.0.1 doubles (generic webhook shared pool, Shopify Admin API with 2 held back, generic
webhook with a 50% share); order streams import channel orders (idempotent, reserving stock) for `duration`
seconds while real worker processes (`python -m api.workers`) push; then one worker is killed -9 and
the same load runs again. Push lag is measured from a stock change's commit to the first moment the channel double
holds that value (or a newer one). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import ROOT, percentile, scratch_postgres
from sqlalchemy import func, select

from api.migrations import upgrade
from commerce.catalog import service as catalog
from commerce.catalog.schemas import ProductIn, VariantIn
from commerce.channels import register_stock_listener
from commerce.channels import service as channels
from commerce.channels.allocation import channel_quantity
from commerce.channels.schemas import ChannelOrderIn, ChannelOrderLineIn
from commerce.channels.sync import import_channel_order
from commerce.inventory import service as inventory
from commerce.orders.models import OrderLine
from kit.db import Database
from tests.commerce.channels.doubles import ShopifyDouble, WebhookDouble, _Served
from tests.factories import make_shop

# (code, allocation, allocation_value) of the three push channels
CHANNELS = [("shop", "shared", 0), ("mkt", "buffer", 2), ("social", "share", 50)]


@dataclass
class Change:
    at: float
    sku: str
    available: int


@dataclass
class Phase:
    changes: list[Change] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    restocked: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0


def shown(code: str, available: int) -> int:
    _, allocation, value = next(c for c in CHANNELS if c[0] == code)
    return channel_quantity(available, allocation=allocation, allocation_value=value, safety_stock=0)


async def setup(database: Database, skus: list[str], stock: int, doubles: dict[str, _Served]) -> None:
    async with database.unit_of_work() as session:
        await make_shop(session)
        for start in range(0, len(skus), 10):
            await catalog.create_product(session, data=ProductIn(
                slug=f"item-{start}", category="home-kitchen", title={"en": f"Item {start}"},
                description={"en": "bench"}, base_price=Decimal("19.90"), currency="EUR",
                variants=[VariantIn(sku=sku) for sku in skus[start:start + 10]]))
    async with database.unit_of_work() as session:
        for sku in skus:
            await inventory.set_stock(session, sku=sku, location="RTM", on_hand=stock)
    shopify = doubles["mkt"]
    assert isinstance(shopify, ShopifyDouble)
    for sku in skus:
        shopify.add_item(sku, shown("mkt", stock))
        for code in ("shop", "social"):
            webhook = doubles[code]
            assert isinstance(webhook, WebhookDouble)
            webhook.list_sku(sku, shown(code, stock))
    async with database.unit_of_work() as session:
        for code, allocation, value in CHANNELS:
            double = doubles[code]
            if isinstance(double, ShopifyDouble):
                config: dict[str, Any] = {"base_url": double.base_url, "access_token": double.access_token,
                                          "location_id": double.location_id, "inventory_item_ids": dict(double.items),
                                          "pull_every_seconds": 3600, "reconcile_every_seconds": 3600}
                connector, mode = "shopify", "push_pull"
            else:
                assert isinstance(double, WebhookDouble)
                config = {"base_url": double.base_url, "secret": double.secret}
                connector, mode = "webhook", "push"
            await channels.create_channel(session, code=code, name=code, kind="marketplace", sync_mode=mode,
                                          connector=connector, allocation=allocation, allocation_value=value,
                                          config=config)


async def order_stream(database: Database, stream: int, skus: list[str], hot: list[str], phase: Phase,
                       deadline: float, restock: int, tag: str) -> None:
    rng = random.Random(stream * 7919 + len(tag))
    n = 0
    while time.monotonic() < deadline:
        n += 1
        sku = rng.choice(hot) if rng.random() < 0.8 else rng.choice(skus)
        code = CHANNELS[rng.randrange(len(CHANNELS))][0]
        order = ChannelOrderIn(external_id=f"{tag}-{stream}-{n}", currency="EUR",
                               lines=[ChannelOrderLineIn(sku=sku, quantity=rng.randint(1, 2),
                                                         unit_price=Decimal("19.90"))])
        async with database.unit_of_work() as session:
            result = await import_channel_order(session, channel_code=code, order=order)
            available = (await inventory.available_stock(session, skus=[sku]))[sku]
            # Taken just before the commit: no worker can read the new value earlier, so lags are never short.
            at = time.time()
        if result.rejection is None:
            phase.accepted += 1
            phase.changes.append(Change(at, sku, available))
            continue
        phase.rejected += 1
        async with database.unit_of_work() as session:  # sold out: the merchant restocks
            await inventory.adjust_stock(session, sku=sku, location="RTM", delta=restock)
            available = (await inventory.available_stock(session, skus=[sku]))[sku]
            at = time.time()
        phase.restocked[sku] = phase.restocked.get(sku, 0) + restock
        phase.changes.append(Change(at, sku, available))


def push_lags(phase: Phase, doubles: dict[str, _Served]) -> tuple[list[float], int]:
    """Seconds from each change to the channel holding its value or a newer one; and how many never got there."""
    by_sku: dict[str, list[Change]] = {}
    for change in sorted(phase.changes, key=lambda c: c.at):
        by_sku.setdefault(change.sku, []).append(change)
    lags: list[float] = []
    missing = 0
    for code, double in doubles.items():
        with double.lock:
            received = list(double.received)
        per_sku: dict[str, list[tuple[float, int]]] = {}
        for r in received:
            per_sku.setdefault(r.sku, []).append((r.at, r.quantity))
        for sku, changes in by_sku.items():
            got = sorted(per_sku.get(sku, []))
            times = [t for t, _ in got]
            for i, change in enumerate(changes):
                start = bisect.bisect_left(times, change.at)
                found = None
                for at, quantity in got[start:start + 500]:
                    newer = {shown(code, c.available) for c in changes[i:] if c.at <= at}
                    if quantity in newer:
                        found = at - change.at
                        break
                if found is None:
                    missing += 1
                else:
                    lags.append(found)
    return lags, missing


def lag_ms(values: list[float], q: float) -> float | None:
    return round(percentile(values, q) * 1000, 1) if values else None


def pushes_received(doubles: dict[str, _Served], start: float, end: float) -> int:
    total = 0
    for double in doubles.values():
        with double.lock:
            total += sum(1 for r in double.received if start <= r.at <= end)
    return total


def summary(phase: Phase, doubles: dict[str, _Served], settle_end: float) -> dict[str, Any]:
    lags, missing = push_lags(phase, doubles)
    elapsed = phase.ended - phase.started
    pushes = pushes_received(doubles, phase.started, settle_end)
    return {
        "seconds": round(elapsed, 1), "orders_accepted": phase.accepted, "orders_rejected_sold_out": phase.rejected,
        "orders_per_s": round(phase.accepted / elapsed, 1) if elapsed else None,
        "stock_changes": len(phase.changes),
        "push_lag_ms_p50": lag_ms(lags, 0.5), "push_lag_ms_p99": lag_ms(lags, 0.99),
        "push_lag_ms_max": lag_ms(lags, 1.0),
        "changes_never_seen_by_a_channel": missing,
        "pushes_received": pushes,
        "pushes_per_stock_change_per_channel": round(pushes / (len(phase.changes) * len(CHANNELS)), 3)
        if phase.changes else None,
    }


def start_worker(url: str, lease: float, concurrency: int, batch: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHOPTALK_DATABASE__URL": url, "HF_HUB_OFFLINE": "1"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "api.workers", "--lease-seconds", str(lease),
                                 "--concurrency", str(concurrency), "--batch-size", str(batch)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def mismatches(database: Database, skus: list[str], doubles: dict[str, _Served]) -> int:
    async with database.sessions() as session:
        available = await inventory.available_stock(session, skus=skus)
    wrong = 0
    for code, double in doubles.items():
        for sku in skus:
            if double.quantity(sku) != shown(code, available[sku]):  # type: ignore[attr-defined]
                wrong += 1
    return wrong


async def settle(database: Database, skus: list[str], doubles: dict[str, _Served], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await mismatches(database, skus, doubles) == 0:
            break
        await asyncio.sleep(0.25)
    return time.monotonic() - start


async def run_phase(database: Database, args: argparse.Namespace, skus: list[str], hot: list[str],
                    tag: str) -> Phase:
    phase = Phase(started=time.time())
    deadline = time.monotonic() + args.duration
    await asyncio.gather(*(order_stream(database, s, skus, hot, phase, deadline, args.restock, tag)
                           for s in range(args.streams)))
    phase.ended = time.time()
    return phase


async def oversold(database: Database, skus: list[str], stock: int, phases: list[Phase]) -> int:
    async with database.sessions() as session:
        ordered = dict((await session.execute(
            select(OrderLine.sku, func.sum(OrderLine.quantity)).group_by(OrderLine.sku))).all())
        levels = await inventory.stock_levels(session, skus=skus)
    bad = sum(1 for lvl in levels if lvl.reserved > lvl.on_hand or lvl.available < 0)
    units = 0
    for sku in skus:
        supplied = stock + sum(p.restocked.get(sku, 0) for p in phases)
        units += max(0, int(ordered.get(sku, 0) or 0) - supplied)
    return units + bad


async def main(args: argparse.Namespace) -> dict[str, Any]:
    sys.setswitchinterval(0.0005)  # the doubles' threads answer promptly next to 20 order streams
    register_stock_listener()  # our stock changes queue pushes
    async with scratch_postgres(args.postgres, "bench_stock_sync") as url:
        return await _run(args, url)


async def _run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    doubles: dict[str, _Served] = {"shop": WebhookDouble(), "mkt": ShopifyDouble(), "social": WebhookDouble()}
    workers: list[subprocess.Popen[bytes]] = []
    database = Database(url, pool_size=args.streams + 5)
    try:
        await upgrade(database.engine)
        for double in doubles.values():
            double.start()
        skus = [f"SKU-{i:05d}" for i in range(args.skus)]
        hot = skus[: max(1, args.skus // 10)]
        await setup(database, skus, args.stock, doubles)
        logs = Path(args.log_dir)
        logs.mkdir(parents=True, exist_ok=True)
        workers = [start_worker(url, args.lease_seconds, args.worker_concurrency, args.batch_size,
                                logs / f"stock-sync-worker-{i}.log")
                   for i in range(args.workers)]
        # The workers are ready once a probe change has reached every channel.
        async with database.unit_of_work() as session:
            await inventory.adjust_stock(session, sku=skus[0], location="RTM", delta=1)
        probe = Phase(restocked={skus[0]: 1})
        startup = await settle(database, skus, doubles, args.settle_timeout + 60)
        first = await run_phase(database, args, skus, hot, "a")
        settle_first = await settle(database, skus, doubles, args.settle_timeout)
        first_end = time.time()
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        second = await run_phase(database, args, skus, hot, "b")
        settle_second = await settle(database, skus, doubles, args.settle_timeout + args.lease_seconds)
        final_end = time.time()
        result = {
            "benchmark": "stock_sync", "backend": "postgresql", "skus": args.skus, "channels": len(CHANNELS),
            "streams": args.streams, "workers": args.workers, "duration_s": args.duration,
            "lease_seconds": args.lease_seconds, "worker_concurrency": args.worker_concurrency,
            "batch_size": args.batch_size, "load_average_1m": os.getloadavg()[0], "worker_startup_s": round(startup, 1),
            "oversold_units": await oversold(database, skus, args.stock, [probe, first, second]),
            "phase_all_workers": {**summary(first, doubles, first_end), "settle_s": round(settle_first, 2)},
            "phase_after_killing_one_worker": {**summary(second, doubles, final_end),
                                               "settle_s": round(settle_second, 2)},
            "final_channel_mismatches": await mismatches(database, skus, doubles),
        }
        return result
    finally:
        for process in workers:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        for double in doubles.values():
            double.stop()
        await database.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("SHOPTALK_BENCH_POSTGRES_URL",
                                                             "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per phase")
    parser.add_argument("--skus", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=20, help="concurrent order streams")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stock", type=int, default=20, help="units per SKU at the start")
    parser.add_argument("--restock", type=int, default=10, help="units added when a SKU sells out")
    parser.add_argument("--lease-seconds", type=float, default=10.0)
    parser.add_argument("--worker-concurrency", type=int, default=1, help="delivery loops per worker process")
    parser.add_argument("--batch-size", type=int, default=50, help="outbox rows a worker claims at once")
    parser.add_argument("--settle-timeout", type=float, default=60.0)
    parser.add_argument("--log-dir", default=str(ROOT / "var" / "bench"))
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
