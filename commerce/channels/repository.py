from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from commerce.channels.models import ChannelOrderRejection, ChannelReconciliation, ChannelSyncState, SalesChannel
from kit.outbox import DEAD, DELIVERED, DELIVERING, PENDING, SUPERSEDED, OutboxEvent

PUSH_TOPIC = "channel.stock_push"
PUSH_MODES = ("push", "push_pull")
PULL_MODES = ("pull", "push_pull")


def push_key(channel_code: str, sku: str) -> str:
    """The outbox coalesce key: one pending push per channel and SKU matters, the newest."""
    return f"{channel_code}:{sku}"


class ChannelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_code(self, code: str) -> SalesChannel | None:
        return await self.session.scalar(select(SalesChannel).where(SalesChannel.code == code))

    async def all(self) -> Sequence[SalesChannel]:
        return (await self.session.scalars(select(SalesChannel).order_by(SalesChannel.id))).all()

    async def push_channel_codes(self) -> Sequence[str]:
        return (await self.session.scalars(
            select(SalesChannel.code).where(SalesChannel.sync_mode.in_(PUSH_MODES),
                                            SalesChannel.connector != "none").order_by(SalesChannel.id))).all()

    async def with_connector(self, modes: Sequence[str]) -> Sequence[SalesChannel]:
        return (await self.session.scalars(
            select(SalesChannel).where(SalesChannel.sync_mode.in_(list(modes)), SalesChannel.connector != "none")
            .order_by(SalesChannel.id))).all()

    async def sync_state(self, channel_id: int, *, for_update: bool = False) -> ChannelSyncState:
        query = select(ChannelSyncState).where(ChannelSyncState.channel_id == channel_id)
        if for_update:
            query = query.with_for_update()
        state = await self.session.scalar(query)
        if state is None:
            try:
                async with self.session.begin_nested():
                    state = ChannelSyncState(channel_id=channel_id, orders_imported=0)
                    self.session.add(state)
            except IntegrityError:  # another transaction created it first
                state = await self.session.scalar(query)
                assert state is not None
        return state

    async def count_imported(self, channel_id: int) -> None:
        result = await self.session.execute(
            update(ChannelSyncState).where(ChannelSyncState.channel_id == channel_id)
            .values(orders_imported=ChannelSyncState.orders_imported + 1).execution_options(synchronize_session=False))
        if not result.rowcount:  # type: ignore[attr-defined]  # a channel made before stock sync existed has no state row yet
            state = await self.sync_state(channel_id)
            state.orders_imported += 1
            await self.session.flush()

    async def rejection(self, channel_id: int, external_id: str) -> ChannelOrderRejection | None:
        return await self.session.scalar(select(ChannelOrderRejection).where(
            ChannelOrderRejection.channel_id == channel_id, ChannelOrderRejection.external_id == external_id))

    async def forget_rejection(self, channel_id: int, external_id: str) -> None:
        await self.session.execute(delete(ChannelOrderRejection).where(
            ChannelOrderRejection.channel_id == channel_id, ChannelOrderRejection.external_id == external_id))

    async def rejection_count(self, channel_id: int) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(ChannelOrderRejection).where(
            ChannelOrderRejection.channel_id == channel_id)) or 0)

    async def last_reconciliation(self, channel_id: int) -> ChannelReconciliation | None:
        return await self.session.scalar(
            select(ChannelReconciliation).where(ChannelReconciliation.channel_id == channel_id)
            .order_by(ChannelReconciliation.id.desc()).limit(1))

    # Push events live in the outbox; a channel's are those whose coalesce key starts with its code.
    def _pushes(self, channel_code: str) -> Any:
        return (OutboxEvent.topic == PUSH_TOPIC) & OutboxEvent.coalesce_key.like(
            push_key(channel_code, "").replace("%", r"\%").replace("_", r"\_") + "%", escape="\\")

    async def push_counts(self, channel_code: str) -> dict[str, int]:
        rows = await self.session.execute(
            select(OutboxEvent.status, func.count()).where(self._pushes(channel_code))
            .where(OutboxEvent.status.in_([PENDING, DELIVERING, DEAD])).group_by(OutboxEvent.status))
        return {status: int(count) for status, count in rows}

    async def oldest_pending_push(self, channel_code: str) -> datetime | None:
        return await self.session.scalar(
            select(func.min(OutboxEvent.created_at)).where(self._pushes(channel_code),
                                                           OutboxEvent.status.in_([PENDING, DELIVERING])))

    async def last_push(self, channel_code: str) -> datetime | None:
        return await self.session.scalar(
            select(func.max(OutboxEvent.delivered_at)).where(self._pushes(channel_code),
                                                             OutboxEvent.status == DELIVERED))

    async def dead_pushes(self, channel_code: str, limit: int) -> Sequence[OutboxEvent]:
        return (await self.session.scalars(
            select(OutboxEvent).where(self._pushes(channel_code), OutboxEvent.status == DEAD)
            .order_by(OutboxEvent.id).limit(limit))).all()

    def _unsettled_dead(self, channel_code: str) -> Any:
        # A dead push is made good by a later delivered push of the same channel and SKU.
        later = aliased(OutboxEvent)
        made_good = select(later.id).where(later.topic == OutboxEvent.topic,
                                           later.coalesce_key == OutboxEvent.coalesce_key,
                                           later.id > OutboxEvent.id, later.status == DELIVERED).exists()
        return self._pushes(channel_code) & (OutboxEvent.status == DEAD) & ~made_good

    async def unsettled_dead_skus(self, channel_code: str) -> list[str]:
        """SKUs whose push to the channel was dead-lettered and not made good since."""
        keys = (await self.session.scalars(
            select(OutboxEvent.coalesce_key).where(self._unsettled_dead(channel_code)).distinct())).all()
        prefix = push_key(channel_code, "")
        return sorted(k[len(prefix):] for k in keys if k is not None)

    async def unsettled_dead_summary(self, channel_code: str) -> tuple[int, str | None, datetime | None]:
        """(count, newest last error, oldest created_at) of the channel's dead pushes not made good."""
        unsettled = self._unsettled_dead(channel_code)
        count, since = (await self.session.execute(
            select(func.count(), func.min(OutboxEvent.created_at)).where(unsettled))).one()
        if not count:
            return 0, None, None
        last_error = await self.session.scalar(
            select(OutboxEvent.last_error).where(unsettled).order_by(OutboxEvent.id.desc()).limit(1))
        return int(count), last_error, since

    async def settle_dead_pushes(self, channel_code: str, skus: Sequence[str]) -> int:
        """Mark dead pushes of these SKUs superseded: the channel was found (or made) right since."""
        if not skus:
            return 0
        result = await self.session.execute(
            update(OutboxEvent).where(OutboxEvent.topic == PUSH_TOPIC, OutboxEvent.status == DEAD,
                                      OutboxEvent.coalesce_key.in_([push_key(channel_code, s) for s in skus]))
            .values(status=SUPERSEDED).execution_options(synchronize_session=False))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
