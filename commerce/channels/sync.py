"""Stock sync with the sales channels: push on every change, pull orders, reconcile drift.

A stock change writes one push event per push channel and SKU into the outbox in the same transaction
(`on_stock_changed`, registered as an inventory stock listener). The event carries only channel and SKU; the
worker reads the CURRENT available quantity when it delivers, and re-reads it after the channel answered: if it
moved meanwhile, it pushes again. So whatever order pushes land in, whichever worker dies, the last value a
channel receives for a SKU is the one the core holds once stock is quiet.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.channels.connectors import Connector, StockPush, connector_for
from commerce.channels.models import ChannelOrderRejection, ChannelReconciliation, ChannelSyncState, SalesChannel
from commerce.channels.repository import PULL_MODES, PUSH_TOPIC, ChannelRepository, push_key
from commerce.channels.schemas import (
    ChannelAlertOut,
    ChannelOrderIn,
    ChannelStatusOut,
    DeadLetterOut,
    DriftOut,
    PullOut,
    ReconciliationOut,
)
from commerce.channels.service import get_channel, public_config, shown_quantity
from commerce.inventory.service import available_stock, stock_listeners
from commerce.orders import service as orders  # module import: orders.repository imports this package
from commerce.orders.models import Order
from commerce.orders.schemas import OrderIn, OrderLineIn
from kit.clock import as_utc, utcnow
from kit.db import Database
from kit.errors import ShopTalkError
from kit.ids import new_uuid
from kit.outbox import PENDING, DeliveryError, OutboxEvent, enqueue, retry_dead

log = logging.getLogger(__name__)

PUSH_MAX_ATTEMPTS = 8
PUSH_REREADS = 3
DEFAULT_PULL_EVERY = 60.0
DEFAULT_RECONCILE_EVERY = 900.0
MAX_DRIFT_SHOWN = 100
CHANNEL_CACHE_SECONDS = 2.0


async def on_stock_changed(session: AsyncSession, skus: list[str]) -> None:
    """Stock listener: queue a push of these SKUs to every push channel, in the caller's transaction."""
    codes = await ChannelRepository(session).push_channel_codes()
    if codes:
        session.add_all([push_event(channel_code=code, sku=sku) for code in codes for sku in dict.fromkeys(skus)])
        await session.flush()  # one multi-row INSERT for all channels


def push_event(*, channel_code: str, sku: str) -> OutboxEvent:
    """An outbox row as kit.outbox.enqueue writes it; built here so one change's rows go in one INSERT."""
    now = utcnow()
    return OutboxEvent(topic=PUSH_TOPIC, payload={"channel": channel_code, "sku": sku},
                       idempotency_key=f"push:{channel_code}:{sku}:{new_uuid()}",
                       coalesce_key=push_key(channel_code, sku), status=PENDING, attempts=0,
                       max_attempts=PUSH_MAX_ATTEMPTS, next_attempt_at=now, created_at=now)


async def queue_push(session: AsyncSession, *, channel_code: str, sku: str) -> None:
    await enqueue(session, topic=PUSH_TOPIC, payload={"channel": channel_code, "sku": sku},
                  idempotency_key=f"push:{channel_code}:{sku}:{new_uuid()}",
                  coalesce_key=push_key(channel_code, sku), max_attempts=PUSH_MAX_ATTEMPTS)


def register_stock_listener() -> None:
    if on_stock_changed not in stock_listeners:
        stock_listeners.append(on_stock_changed)


@dataclass
class ImportResult:
    order: Order | None
    created: bool
    rejection: ShopTalkError | None


async def import_channel_order(session: AsyncSession, *, channel_code: str, order: ChannelOrderIn) -> ImportResult:
    """Take a channel's order exactly once per (channel, external id), reserving its stock.

    An order the core cannot take (not enough stock, unknown SKU...) is recorded for the merchant and returned
    as a rejection; nothing else changes. A later delivery of the same order tries again.
    """
    repo = ChannelRepository(session)
    data = OrderIn(channel=channel_code, external_id=order.external_id, currency=order.currency,
                   lines=[OrderLineIn(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
                          for line in order.lines],
                   email=order.email, country=order.country, postcode=order.postcode, shipping=order.shipping)
    try:
        created_order, created = await orders.create_order(session, data=data)
    except ShopTalkError as exc:
        if exc.status >= 500:
            raise
        channel = await get_channel(session, code=channel_code)
        existing = await repo.rejection(channel.id, order.external_id)
        if existing is None:
            try:
                async with session.begin_nested():
                    session.add(ChannelOrderRejection(channel_id=channel.id, external_id=order.external_id,
                                                      code=exc.code, reason=exc.detail[:2000], created_at=utcnow()))
            except IntegrityError:
                pass  # a concurrent delivery recorded the same rejection
        else:
            existing.code, existing.reason = exc.code, exc.detail[:2000]
        await session.flush()
        return ImportResult(None, False, exc)
    if created:
        await repo.forget_rejection(created_order.channel_id, order.external_id)
        await repo.count_imported(created_order.channel_id)
    return ImportResult(created_order, created, None)


async def pushed_quantity(session: AsyncSession, channel: SalesChannel, sku: str) -> int:
    available = (await available_stock(session, skus=[sku]))[sku]
    return shown_quantity(channel, available)


async def channel_status(session: AsyncSession, *, channel: SalesChannel) -> ChannelStatusOut:
    repo = ChannelRepository(session)
    state = await repo.sync_state(channel.id)
    counts = await repo.push_counts(channel.code)
    oldest = await repo.oldest_pending_push(channel.code)
    last_push = await repo.last_push(channel.code)
    last_push = as_utc(last_push) if last_push is not None else None
    last_pull = as_utc(state.last_pull_at) if state.last_pull_at is not None else None
    now = utcnow()
    reconciliation = await repo.last_reconciliation(channel.id)
    return ChannelStatusOut(
        code=channel.code, name=channel.name, kind=channel.kind, sync_mode=channel.sync_mode,
        connector=channel.connector, allocation=channel.allocation, allocation_value=channel.allocation_value,
        safety_stock=channel.safety_stock, config=public_config(channel.config),
        last_push_at=last_push, last_pull_at=last_pull, last_pull_error=state.last_pull_error,
        last_sync_at=max((t for t in (last_push, last_pull) if t is not None), default=None),
        lag_seconds=round((now - as_utc(oldest)).total_seconds(), 3) if oldest is not None else 0.0,
        pending=counts.get("pending", 0) + counts.get("delivering", 0), dead=counts.get("dead", 0),
        orders_imported=state.orders_imported, orders_rejected=await repo.rejection_count(channel.id),
        last_reconciliation=_reconciliation_out(channel.code, reconciliation) if reconciliation else None,
        alert=await _alert(repo, channel.code, reconciliation))


async def _alert(repo: ChannelRepository, code: str, last: ChannelReconciliation | None) -> ChannelAlertOut | None:
    """What may be wrong on the channel now: dead pushes not made good, drift or an error left by the last check."""
    dead, dead_error, dead_since = await repo.unsettled_dead_summary(code)
    unrepaired = last.drifted - last.repaired if last is not None else 0
    failed = last.error if last is not None else None
    if not dead and not unrepaired and not failed:
        return None
    return ChannelAlertOut(dead_pushes=dead, dead_last_error=dead_error,
                           dead_since=as_utc(dead_since) if dead_since is not None else None,
                           unrepaired_drift=unrepaired, reconciliation_error=failed,
                           reconciled_at=as_utc(last.finished_at) if last is not None and last.finished_at else None)


def _reconciliation_out(code: str, row: ChannelReconciliation) -> ReconciliationOut:
    return ReconciliationOut(channel=code, started_at=as_utc(row.started_at),
                             finished_at=as_utc(row.finished_at) if row.finished_at else None,
                             checked=row.checked, drifted=row.drifted, repaired=row.repaired,
                             drift=[DriftOut.model_validate(d) for d in row.drift], error=row.error)


async def dead_letters(session: AsyncSession, *, code: str, limit: int = 200) -> list[DeadLetterOut]:
    """Pushes to a channel that failed every try, oldest first."""
    channel = await get_channel(session, code=code)
    return [DeadLetterOut(event_id=e.id, sku=str(e.payload.get("sku", "")), attempts=e.attempts,
                          last_error=e.last_error, created_at=as_utc(e.created_at))
            for e in await ChannelRepository(session).dead_pushes(channel.code, limit)]


async def retry_dead_letters(session: AsyncSession, *, code: str, event_ids: list[int] | None = None) -> int:
    """Send a channel's dead-lettered pushes again (all, or the given ones); how many were queued."""
    channel = await get_channel(session, code=code)
    own = [e.id for e in await ChannelRepository(session).dead_pushes(channel.code, 10_000)]
    chosen = own if event_ids is None else [i for i in event_ids if i in set(own)]
    return await retry_dead(session, chosen) if chosen else 0


class StockSync:
    """The worker side of stock sync: the push handler, order pulls and reconciliation runs.

    Holds one HTTP client for the process; every database step is its own short transaction and no
    transaction is open while a channel is called.
    """

    def __init__(self, database: Database, *, http: httpx.AsyncClient | None = None, timeout: float = 10.0) -> None:
        self.database = database
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=timeout)
        self._channels: dict[str, tuple[float, SalesChannel]] = {}

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    async def _channel(self, session: AsyncSession, code: str) -> SalesChannel | None:
        # Channel settings change rarely; a short cache saves a query on every push.
        cached = self._channels.get(code)
        if cached is not None and time.monotonic() - cached[0] < CHANNEL_CACHE_SECONDS:
            return cached[1]
        channel = await ChannelRepository(session).by_code(code)
        if channel is not None:
            self._channels[code] = (time.monotonic(), channel)
        return channel

    async def push(self, event: OutboxEvent) -> None:
        """Outbox handler for channel.stock_push: bring one channel's SKU to the core's current quantity."""
        code, sku = str(event.payload.get("channel", "")), str(event.payload.get("sku", ""))
        async with self.database.sessions() as session:
            channel = await self._channel(session, code)
            if channel is None or channel.connector == "none" or channel.sync_mode == "direct":
                return  # the channel went away or no longer takes pushes
            quantity = await pushed_quantity(session, channel, sku)
        connector = connector_for(channel, self.http)
        for _ in range(PUSH_REREADS):
            # A key per request: a retry carries the quantity current then, and must not be dropped as a repeat.
            await connector.push_stock(StockPush(sku=sku, quantity=quantity,
                                                 idempotency_key=f"{event.idempotency_key}:{new_uuid()[:12]}"))
            async with self.database.sessions() as session:
                latest = await pushed_quantity(session, channel, sku)
            if latest == quantity:
                return
            quantity = latest  # stock moved while we pushed; this push may have landed after a newer one
        raise DeliveryError(f"stock of {sku} kept moving while pushing to {code}", retry_after=0.2)

    async def pull_orders(self, *, code: str, limit: int = 100, max_pages: int = 20) -> PullOut:
        """Import a channel's new orders (idempotent on its order ids) and move the cursor past them."""
        async with self.database.unit_of_work() as session:
            channel = await get_channel(session, code=code)
            cursor = (await ChannelRepository(session).sync_state(channel.id)).order_cursor
        connector = connector_for(channel, self.http)
        imported = duplicates = rejected = 0
        try:
            for _ in range(max_pages):
                page = await connector.fetch_orders(cursor, limit)
                for order in page.orders:
                    async with self.database.unit_of_work() as session:
                        result = await import_channel_order(session, channel_code=code, order=order)
                    if result.rejection is not None:
                        rejected += 1
                        log.warning("channel %s order %s rejected: %s", code, order.external_id,
                                    result.rejection.code)
                    elif result.created:
                        imported += 1
                    else:
                        duplicates += 1
                cursor = page.cursor
                async with self.database.unit_of_work() as session:
                    state = await ChannelRepository(session).sync_state(channel.id, for_update=True)
                    state.order_cursor = cursor
                    state.last_pull_at = utcnow()
                    state.last_pull_error = None
                if not page.more:
                    break
        except DeliveryError as exc:
            async with self.database.unit_of_work() as session:
                state = await ChannelRepository(session).sync_state(channel.id, for_update=True)
                state.last_pull_error = str(exc)[:2000]
            raise
        return PullOut(channel=code, imported=imported, duplicates=duplicates, rejected=rejected, cursor=cursor)

    async def reconcile(self, *, code: str, repair: bool = True) -> ReconciliationOut:
        """Compare what the channel shows with what it should show and, with repair, push the current quantity of
        every SKU that drifted (or whose push was dead-lettered) at once.

        A repair the channel refuses is queued on the outbox instead (it retries with backoff). Dead-lettered
        pushes of SKUs found or made right are marked superseded: they no longer raise the channel's alert.
        """
        started = utcnow()
        async with self.database.sessions() as session:
            channel = await get_channel(session, code=code)
            dead_skus = await ChannelRepository(session).unsettled_dead_skus(code)
        connector = connector_for(channel, self.http)
        error: str | None = None
        theirs: dict[str, int] = {}
        skus: list[str] = []
        try:
            theirs = await connector.fetch_stock(None)
            # A dead-lettered SKU the channel does not list is checked too: its push may never have landed.
            skus = sorted(set(theirs) | set(dead_skus))
        except DeliveryError as exc:
            error = str(exc)[:2000]
        async with self.database.sessions() as session:
            ours = await available_stock(session, skus=skus) if skus else {}
        drift = [DriftOut(sku=sku, ours=shown_quantity(channel, ours[sku]), theirs=theirs.get(sku)) for sku in skus
                 if theirs.get(sku) != shown_quantity(channel, ours[sku])]
        repaired: list[str] = []
        queued: list[str] = []
        for item in drift if repair else []:
            # After one refusal the channel is likely down: the rest go to the outbox without waiting on it.
            if queued or not await self._repair(channel, connector, item.sku):
                queued.append(item.sku)
            else:
                repaired.append(item.sku)
        drifted = {d.sku for d in drift}
        right_now = [sku for sku in skus if sku not in drifted] + repaired
        async with self.database.unit_of_work() as session:
            repo = ChannelRepository(session)
            for sku in queued:
                await queue_push(session, channel_code=code, sku=sku)
            await repo.settle_dead_pushes(code, right_now)
            row = ChannelReconciliation(channel_id=channel.id, started_at=started, finished_at=utcnow(),
                                        checked=len(skus), drifted=len(drift), repaired=len(repaired),
                                        drift=[d.model_dump() for d in drift[:MAX_DRIFT_SHOWN]], error=error)
            session.add(row)
            state = await repo.sync_state(channel.id, for_update=True)
            state.last_reconciled_at = utcnow()
            await session.flush()
            return _reconciliation_out(code, row)

    async def _repair(self, channel: SalesChannel, connector: Connector, sku: str) -> bool:
        """Push the SKU's current quantity until the channel holds the value the core still has; False if refused."""
        for _ in range(PUSH_REREADS):
            async with self.database.sessions() as session:
                quantity = await pushed_quantity(session, channel, sku)
            try:
                await connector.push_stock(StockPush(sku=sku, quantity=quantity,
                                                     idempotency_key=f"reconcile:{channel.code}:{sku}:{new_uuid()}"))
            except DeliveryError as exc:
                log.warning("channel %s refused the repair of %s: %s", channel.code, sku, exc)
                return False
            async with self.database.sessions() as session:
                if await pushed_quantity(session, channel, sku) == quantity:
                    return True
        return False

    async def _claim(self, channel_id: int, *, pull: bool, every: float) -> bool:
        """Take this round for one channel, so several workers do not pull or reconcile it at once."""
        now = utcnow()
        column = ChannelSyncState.last_pull_at if pull else ChannelSyncState.last_reconciled_at
        async with self.database.unit_of_work() as session:
            await ChannelRepository(session).sync_state(channel_id)
        async with self.database.unit_of_work() as session:
            result = await session.execute(
                update(ChannelSyncState)
                .where(ChannelSyncState.channel_id == channel_id,
                       column.is_(None) | (column <= now - timedelta(seconds=every)))
                .values({column.key: now}).execution_options(synchronize_session=False))
            return bool(result.rowcount)

    async def run_due(self) -> dict[str, int]:
        """One scheduler tick: pull the pull channels and reconcile every connected channel whose time has come."""
        async with self.database.sessions() as session:
            channels = list(await ChannelRepository(session).with_connector(("push", "pull", "push_pull")))
        done = {"pulled": 0, "reconciled": 0}
        for channel in channels:
            pull_every = float(channel.config.get("pull_every_seconds", DEFAULT_PULL_EVERY))
            reconcile_every = float(channel.config.get("reconcile_every_seconds", DEFAULT_RECONCILE_EVERY))
            try:
                if channel.sync_mode in PULL_MODES and await self._claim(channel.id, pull=True, every=pull_every):
                    await self.pull_orders(code=channel.code)
                    done["pulled"] += 1
                # Push channels too: a dead-lettered push is made good by the next reconciliation.
                if await self._claim(channel.id, pull=False, every=reconcile_every):
                    await self.reconcile(code=channel.code)
                    done["reconciled"] += 1
            except (DeliveryError, ShopTalkError) as exc:
                log.warning("channel %s sync round failed: %s", channel.code, exc)
        return done
