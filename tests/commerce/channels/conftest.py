from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.channels import register_stock_listener
from commerce.channels import service as channels
from commerce.channels.repository import PUSH_TOPIC
from commerce.channels.sync import StockSync
from kit.db import Database
from kit.outbox import OutboxWorker
from tests.commerce.channels.doubles import ShopifyDouble, WebhookDouble
from tests.factories import make_product, make_shop

SKUS = ["KET-1", "KET-2", "MUG-1"]


@pytest.fixture(autouse=True)
def stock_listener() -> None:
    """These tests change stock in the test process itself, which is what must queue the pushes."""
    register_stock_listener()


@pytest.fixture
def shopify() -> Iterator[ShopifyDouble]:
    double = ShopifyDouble()
    double.start()
    for sku in SKUS:
        double.add_item(sku, available=0)
    yield double
    double.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookDouble]:
    double = WebhookDouble()
    double.start()
    yield double
    double.stop()


@pytest.fixture
async def stock_sync(db: Database) -> AsyncIterator[StockSync]:
    sync = StockSync(db, timeout=5.0)
    yield sync
    await sync.aclose()


async def make_channels(session: AsyncSession, shopify: ShopifyDouble, webhook: WebhookDouble) -> None:
    """web (generic webhook, push), market (Shopify, push-pull, 2 held back) and chat (direct, 50% share)."""
    await channels.create_channel(session, code="site", name="Web shop", kind="web", sync_mode="push",
                                  connector="webhook", config={"base_url": webhook.base_url, "secret": webhook.secret})
    await channels.create_channel(
        session, code="mkt", name="Marketplace", kind="marketplace", sync_mode="push_pull", connector="shopify",
        allocation="buffer", allocation_value=2,
        config={"base_url": shopify.base_url, "access_token": shopify.access_token, "location_id": shopify.location_id,
                "inventory_item_ids": dict(shopify.items)})
    await channels.create_channel(session, code="chatbot", name="Telegram", kind="telegram", sync_mode="direct",
                                  allocation="share", allocation_value=50)


async def make_stocked_shop(db: Database, shopify: ShopifyDouble, webhook: WebhookDouble,
                            stock: dict[str, int] | None = None) -> None:
    async with db.unit_of_work() as session:
        await make_shop(session)
        await make_channels(session, shopify, webhook)
        await make_product(session, slug="kettle", skus={sku: {"RTM": qty} for sku, qty in
                                                         (stock or {"KET-1": 10, "KET-2": 5, "MUG-1": 3}).items()})


def worker_for(db: Database, sync: StockSync) -> OutboxWorker:
    return OutboxWorker(db.sessions, {PUSH_TOPIC: sync.push}, worker_id="test")


async def drain(worker: OutboxWorker, done: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Run the worker until `done()` holds (retries included), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the channels did not catch up in time")
        if await worker.run_once() == 0:
            await asyncio.sleep(0.05)
