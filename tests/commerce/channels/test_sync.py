from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from commerce.channels import service as channels
from commerce.channels.connectors import StockPush, WebhookConnector
from commerce.channels.errors import InvalidChannelConfig
from commerce.channels.models import ChannelOrderRejection
from commerce.channels.schemas import ChannelOrderIn, ChannelOrderLineIn
from commerce.channels.sync import StockSync, channel_status, dead_letters, import_channel_order, retry_dead_letters
from commerce.inventory import service as inventory
from commerce.orders.models import Order
from kit import clock as clock_module
from kit.db import Database
from kit.outbox import DELIVERED, SUPERSEDED, OutboxEvent
from tests.commerce.channels.conftest import drain, make_stocked_shop, worker_for
from tests.commerce.channels.doubles import ShopifyDouble, WebhookDouble


def expected_web(available: int) -> int:
    return available


def expected_market(available: int) -> int:
    return max(0, available - 2)


async def _available(db: Database, sku: str) -> int:
    async with db.sessions() as session:
        return (await inventory.available_stock(session, skus=[sku]))[sku]


def _order(external_id: str, sku: str, quantity: int = 1) -> ChannelOrderIn:
    return ChannelOrderIn(external_id=external_id, currency="EUR",
                          lines=[ChannelOrderLineIn(sku=sku, quantity=quantity, unit_price=Decimal("49.90"))])


async def test_every_push_channel_ends_at_the_newest_quantity_in_one_coalesced_push(
        db: Database, shopify: ShopifyDouble, webhook: WebhookDouble, stock_sync: StockSync) -> None:
    await make_stocked_shop(db, shopify, webhook)
    for _ in range(6):  # six separate sales of one SKU before any worker runs
        async with db.unit_of_work() as session:
            await inventory.reserve_stock(session, sku="KET-1", quantity=1)
    worker = worker_for(db, stock_sync)
    await drain(worker, lambda: webhook.quantity("KET-1") == 4 and shopify.quantity("KET-1") == 2)
    await drain(worker, lambda: webhook.quantity("MUG-1") == 3 and shopify.quantity("MUG-1") == 1)
    assert [r.quantity for r in webhook.pushes_for("KET-1")] == [4]
    assert [r.quantity for r in shopify.pushes_for("KET-1")] == [2]
    assert webhook.bad_signatures == 0
    async with db.sessions() as session:
        statuses = dict((await session.execute(
            select(OutboxEvent.status, func.count()).where(OutboxEvent.coalesce_key == "site:KET-1")
            .group_by(OutboxEvent.status))).all())
        # the direct chat channel reads stock itself: half of the pool
        assert await channels.channel_stock(session, code="chatbot", skus=["KET-1"]) == {"KET-1": 2}
    # one event per stock change (1 set_stock + 6 reservations); all but the last superseded
    assert statuses == {SUPERSEDED: 6, DELIVERED: 1}


async def test_a_stale_push_that_lands_after_a_newer_one_is_corrected(
        db: Database, shopify: ShopifyDouble, webhook: WebhookDouble, stock_sync: StockSync,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker A reads 6 and is slow; stock drops to 4 and worker B pushes 4; A's 6 lands last. The channel ends at 4."""
    await make_stocked_shop(db, shopify, webhook)
    await drain(worker_for(db, stock_sync), lambda: webhook.quantity("KET-2") == 5 and shopify.quantity("KET-2") == 3)
    original = WebhookConnector.push_stock
    raced = False

    async def slow_push(self: WebhookConnector, push: StockPush) -> None:
        nonlocal raced
        if not raced and push.sku == "KET-2":
            raced = True
            async with db.unit_of_work() as session:
                await inventory.reserve_stock(session, sku="KET-2", quantity=2)
            await drain(worker_for(db, stock_sync), lambda: webhook.quantity("KET-2") == 4)
        await original(self, push)

    monkeypatch.setattr(WebhookConnector, "push_stock", slow_push)
    async with db.unit_of_work() as session:
        await inventory.adjust_stock(session, sku="KET-2", location="RTM", delta=1)
    await drain(worker_for(db, stock_sync), lambda: raced and shopify.quantity("KET-2") == 2)
    await drain(worker_for(db, stock_sync), lambda: True)
    assert [r.quantity for r in webhook.pushes_for("KET-2")] == [5, 4, 6, 4]
    assert len(set(webhook.idempotency_keys)) == len(webhook.idempotency_keys)
    assert webhook.quantity("KET-2") == await _available(db, "KET-2") == 4


async def test_channel_failing_with_500s_and_429s_catches_up(
        db: Database, shopify: ShopifyDouble, webhook: WebhookDouble, stock_sync: StockSync,
        monkeypatch: pytest.MonkeyPatch) -> None:
    await make_stocked_shop(db, shopify, webhook)
    shopify.fail_next(4, status=503)
    webhook.fail_next(3, status=500)
    webhook.rate_limit_next(3, retry_after=0.1)
    shift = timedelta(0)
    real_now = clock_module.clock.now
    monkeypatch.setattr(clock_module.clock, "now", lambda: real_now() + shift)
    worker = worker_for(db, stock_sync)
    for _ in range(3):
        async with db.unit_of_work() as session:
            await inventory.reserve_stock(session, sku="MUG-1", quantity=1)
        for _ in range(3):
            await worker.run_once()
            shift += timedelta(seconds=5)  # let backoff delays pass without waiting for them

    def caught_up() -> bool:
        return (webhook.quantity("MUG-1"), shopify.quantity("MUG-1")) == (0, 0) and \
            (webhook.quantity("KET-1"), shopify.quantity("KET-1")) == (10, 8)

    async def tick() -> None:
        nonlocal shift
        while not caught_up():
            shift += timedelta(seconds=5)
            await asyncio.sleep(0.05)

    ticker = asyncio.create_task(tick())
    await drain(worker, caught_up)
    await ticker
    async with db.sessions() as session:
        status = await channel_status(session, channel=await channels.get_channel(session, code="site"))
    assert status.pending == 0
    assert status.dead == 0
    assert status.last_push_at is not None


async def test_pushes_failing_every_try_are_dead_lettered_and_retried_by_the_merchant(
        db: Database, shopify: ShopifyDouble, webhook: WebhookDouble, stock_sync: StockSync) -> None:
    await make_stocked_shop(db, shopify, webhook)
    webhook.fail_next(1, status=404)  # a refusal that will never succeed: no retries
    worker = worker_for(db, stock_sync)
    async with db.unit_of_work() as session:
        await inventory.set_stock(session, sku="KET-2", location="RTM", on_hand=7)
    await drain(worker, lambda: shopify.quantity("KET-2") == 5)
    async with db.sessions() as session:
        dead = await dead_letters(session, code="site")
        status = await channel_status(session, channel=await channels.get_channel(session, code="site"))
    assert status.dead == len(dead) >= 1
    assert all("404" in (d.last_error or "") for d in dead)
    async with db.unit_of_work() as session:
        assert await retry_dead_letters(session, code="site", event_ids=None) == len(dead)
    await drain(worker, lambda: webhook.quantity("KET-2") == 7 and webhook.quantity("KET-1") == 10)
    async with db.sessions() as session:
        assert await dead_letters(session, code="site") == []


async def test_duplicate_order_deliveries_make_one_order(
        db: Database, shopify: ShopifyDouble, webhook: WebhookDouble) -> None:
    await make_stocked_shop(db, shopify, webhook)

    async def deliver() -> bool:
        async with db.unit_of_work() as session:
            result = await import_channel_order(session, channel_code="site", order=_order("W-1", "KET-1", 2))
        return result.created

    created = await asyncio.gather(*(deliver() for _ in range(5)))
    assert sum(created) == 1
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1
    assert await _available(db, "KET-1") == 8


async def test_concurrent_orders_from_three_channels_never_oversell(
        db: Database, shopify: ShopifyDouble, webhook: WebhookDouble) -> None:
    await make_stocked_shop(db, shopify, webhook, stock={"KET-1": 10, "KET-2": 1, "MUG-1": 1})

    async def buy(channel: str, n: int) -> bool:
        async with db.unit_of_work() as session:
            result = await import_channel_order(session, channel_code=channel, order=_order(f"{channel}-{n}", "KET-1"))
        return result.created

    results = await asyncio.gather(*(buy(channel, n) for n in range(12) for channel in ("site", "mkt", "chatbot")))
    assert sum(results) == 10
    async with db.sessions() as session:
        levels = await inventory.stock_levels(session, skus=["KET-1"])
        sold = await session.scalar(select(func.count()).select_from(Order))
        rejected = await session.scalar(select(func.count()).select_from(ChannelOrderRejection))
    assert sum(lvl.reserved for lvl in levels) == 10 == sold
    assert sum(lvl.available for lvl in levels) == 0
    assert rejected == 26


async def test_shopify_orders_are_pulled_once_with_paging(
        db: Database, shopify: ShopifyDouble, webhook: WebhookDouble, stock_sync: StockSync) -> None:
    await make_stocked_shop(db, shopify, webhook)
    for n in range(5):
        shopify.add_order([("KET-1", 1, "49.90")], email=f"buyer{n}@example.com" if n else "broken address")
    shopify.add_order([("KET-2", 1, "29.90")], cancelled=True)
    shopify.add_order([("MUG-1", 9, "9.90")])  # more than we have: rejected, recorded
    first = await stock_sync.pull_orders(code="mkt", limit=2)
    assert (first.imported, first.rejected, first.duplicates) == (5, 1, 0)
    shopify.rate_limit_next(1, retry_after=0.01)
    with pytest.raises(Exception, match="429"):
        await stock_sync.pull_orders(code="mkt")
    again = await stock_sync.pull_orders(code="mkt")
    assert (again.imported, again.duplicates) == (0, 0)
    async with db.unit_of_work() as session:
        state = await stock_sync.pull_orders(code="mkt")
        assert state.cursor == first.cursor
        status = await channel_status(session, channel=await channels.get_channel(session, code="mkt"))
    assert status.orders_imported == 5
    assert status.orders_rejected == 1
    assert await _available(db, "KET-1") == 5
    # the cursor is gone (say, restored from a backup): the same orders come again and change nothing
    async with db.unit_of_work() as session:
        from commerce.channels.repository import ChannelRepository
        channel = await channels.get_channel(session, code="mkt")
        (await ChannelRepository(session).sync_state(channel.id)).order_cursor = None
    replay = await stock_sync.pull_orders(code="mkt")
    assert (replay.imported, replay.duplicates) == (0, 5)
    assert await _available(db, "KET-1") == 5


async def test_reconciliation_reports_and_repairs_drift(
        db: Database, shopify: ShopifyDouble, webhook: WebhookDouble, stock_sync: StockSync) -> None:
    await make_stocked_shop(db, shopify, webhook)
    worker = worker_for(db, stock_sync)
    await drain(worker, lambda: shopify.quantity("KET-1") == 8 and shopify.quantity("MUG-1") == 1)
    shopify.available[shopify.items["KET-1"]] = 40  # someone edited stock in the marketplace's admin
    report = await stock_sync.reconcile(code="mkt")
    assert report.checked == 3
    assert report.drifted == 1
    assert [(d.sku, d.ours, d.theirs) for d in report.drift] == [("KET-1", 8, 40)]
    await drain(worker, lambda: shopify.quantity("KET-1") == 8)
    assert (await stock_sync.reconcile(code="mkt")).drifted == 0
    webhook.list_sku("OLD-1", 3)  # a listing the core does not know: it has none to sell
    report = await stock_sync.reconcile(code="site")
    assert [(d.sku, d.ours, d.theirs) for d in report.drift] == [("OLD-1", 0, 3)]
    await drain(worker, lambda: webhook.quantity("OLD-1") == 0)


async def test_channel_config_is_checked_and_secrets_are_masked(db: Database) -> None:
    async with db.unit_of_work() as session:
        with pytest.raises(InvalidChannelConfig):
            await channels.create_channel(session, code="m", name="M", kind="marketplace", sync_mode="push",
                                          connector="shopify", config={"base_url": "http://127.0.0.1:1"})
        with pytest.raises(InvalidChannelConfig):
            await channels.create_channel(session, code="s", name="S", kind="web", allocation="share",
                                          allocation_value=150)
        channel = await channels.create_channel(session, code="w", name="W", kind="web", sync_mode="push",
                                                connector="webhook",
                                                config={"base_url": "http://127.0.0.1:1", "secret": "s3cret-value"})
        status = await channel_status(session, channel=channel)
    assert status.config["secret"] == "********"
    assert "s3cret-value" not in status.model_dump_json()


async def test_worker_schedule_pulls_and_reconciles_once_per_interval(
        db: Database, shopify: ShopifyDouble, webhook: WebhookDouble) -> None:
    from api.workers.stock_sync import outbox_handlers, periodic_jobs
    from kit.settings import Settings

    await make_stocked_shop(db, shopify, webhook)
    shopify.add_order([("KET-1", 3, "49.90")])
    assert "channel.stock_push" in outbox_handlers(Settings(), db)
    job = next(j for j in periodic_jobs(Settings(), db) if j.name == "channel_pull_and_reconcile")
    assert await job.run() == {"pulled": 1, "reconciled": 2}  # only mkt pulls; both are reconciled
    shopify.add_order([("KET-1", 1, "49.90")])
    assert await job.run() == {"pulled": 0, "reconciled": 0}  # not due again yet
    assert await _available(db, "KET-1") == 7
