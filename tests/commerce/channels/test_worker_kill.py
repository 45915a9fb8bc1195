from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from commerce.channels.repository import PUSH_TOPIC
from commerce.inventory import service as inventory
from kit.db import Database
from kit.outbox import DEAD, DELIVERING, PENDING, OutboxEvent
from tests.commerce.channels.conftest import SKUS, make_stocked_shop
from tests.commerce.channels.doubles import ShopifyDouble, WebhookDouble

ROOT = Path(__file__).resolve().parents[3]


def _start_worker(db: Database, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHOPTALK_DATABASE__URL": db.engine.url.render_as_string(hide_password=False),
           "HF_HUB_OFFLINE": "1"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "api.workers", "--lease-seconds", "3"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _expected(db: Database) -> dict[str, tuple[int, int]]:
    async with db.sessions() as session:
        available = await inventory.available_stock(session, skus=SKUS)
    return {sku: (qty, max(0, qty - 2)) for sku, qty in available.items()}


async def _sell_and_restock(db: Database, rounds: int) -> None:
    for n in range(rounds):
        sku = SKUS[n % len(SKUS)]
        async with db.unit_of_work() as session:
            if n % 4 == 3:
                await inventory.adjust_stock(session, sku=sku, location="RTM", delta=2)
            else:
                try:
                    await inventory.reserve_stock(session, sku=sku, quantity=1)
                except Exception:  # sold out: restock instead
                    await inventory.adjust_stock(session, sku=sku, location="RTM", delta=3)


@pytest.mark.slow
async def test_worker_killed_mid_delivery_loses_no_update(
        db: Database, shopify: ShopifyDouble, webhook: WebhookDouble, tmp_path: Path) -> None:
    await make_stocked_shop(db, shopify, webhook, stock={"KET-1": 30, "KET-2": 20, "MUG-1": 10})
    webhook.slow_down(0.3)  # every push hangs a while: the kill lands in the middle of one
    shopify.slow_down(0.3)
    await _sell_and_restock(db, 30)
    doomed = _start_worker(db, tmp_path / "worker-a.log")
    survivor = _start_worker(db, tmp_path / "worker-b.log")
    try:
        deadline = time.monotonic() + 300  # a worker process imports every worker module; slow on a busy machine
        while webhook.requests + shopify.requests < 4:
            assert time.monotonic() < deadline, (tmp_path / "worker-a.log").read_text()[-3000:]
            await asyncio.sleep(0.05)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        await _sell_and_restock(db, 12)
        webhook.slow_down(0)
        shopify.slow_down(0)
        deadline = time.monotonic() + 180
        while True:
            expected = await _expected(db)
            seen = {sku: (webhook.quantity(sku), shopify.quantity(sku)) for sku in SKUS}
            async with db.sessions() as session:
                open_events = await session.scalar(select(func.count()).select_from(OutboxEvent).where(
                    OutboxEvent.topic == PUSH_TOPIC, OutboxEvent.status.in_([PENDING, DELIVERING, DEAD])))
            if seen == expected and open_events == 0:
                break
            assert time.monotonic() < deadline, f"channels at {seen}, core at {expected}, {open_events} open"
            assert survivor.poll() is None, (tmp_path / "worker-b.log").read_text()[-3000:]
            await asyncio.sleep(0.2)
    finally:
        for process in (doomed, survivor):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
