"""Read-only queries over orders for training and history, plus the impression/outcome tables."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Result, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.orders.models import Order, OrderLine
from commerce.recommend.models import RecommendationImpression, RecommendationOutcome

# Orders that never happened teach nothing about what people buy.
NOT_PURCHASES = ("pending_payment", "cancelled")


@dataclass(frozen=True)
class PurchaseLine:
    order_id: int
    shopper_id: int | None
    email: str | None
    country: str | None
    created_at: datetime
    sku: str


def _purchases(rows: Result[int, int | None, str | None, str | None, datetime, str]) -> list[PurchaseLine]:
    return [PurchaseLine(order_id=order_id, shopper_id=shopper_id, email=email, country=country,
                         created_at=created_at, sku=sku)
            for order_id, shopper_id, email, country, created_at, sku in rows]


class RecommendRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _lines(self) -> Select[int, int | None, str | None, str | None, datetime, str]:
        return (select(Order.id, Order.shopper_id, Order.email, Order.country, Order.created_at, OrderLine.sku)
                .join(OrderLine, OrderLine.order_id == Order.id)
                .where(Order.status.not_in(NOT_PURCHASES), OrderLine.quantity > 0)
                .order_by(Order.created_at, Order.id, OrderLine.id))

    async def purchase_lines(self) -> list[PurchaseLine]:
        return _purchases(await self.session.execute(self._lines()))

    async def shopper_lines(self, shopper_id: int) -> list[PurchaseLine]:
        return _purchases(await self.session.execute(self._lines().where(Order.shopper_id == shopper_id)))

    def add_impressions(self, impressions: Sequence[RecommendationImpression]) -> None:
        self.session.add_all(impressions)

    async def impression(self, impression_id: int) -> RecommendationImpression | None:
        return await self.session.get(RecommendationImpression, impression_id)

    async def outcome(self, impression_id: int, kind: str) -> RecommendationOutcome | None:
        return (await self.session.scalars(
            select(RecommendationOutcome).where(RecommendationOutcome.impression_id == impression_id,
                                                RecommendationOutcome.kind == kind))).first()

    async def counts_by_model(self, since: datetime | None) -> dict[str, dict[str, int]]:
        """Per model: impressions, and impressions that led to each outcome kind."""
        return {model: row for (model, _), row in (await self.counts(since, per_channel=False)).items()}

    async def counts(self, since: datetime | None, *, per_channel: bool) -> dict[tuple[str, str], dict[str, int]]:
        """Per (model, channel) - channel "" unless `per_channel` - impressions, and impressions that led to
        each outcome kind."""
        impression = RecommendationImpression
        keys = (impression.model, impression.channel) if per_channel else (impression.model,)
        shown = select(*keys, func.count(impression.id))
        outcome = RecommendationOutcome
        done = (select(*keys, outcome.kind, func.count(func.distinct(outcome.impression_id)))
                .join(outcome, outcome.impression_id == impression.id))
        if since is not None:
            shown = shown.where(impression.shown_at >= since)
            done = done.where(impression.shown_at >= since)
        counts: dict[tuple[str, str], dict[str, int]] = {}
        for row in await self.session.execute(shown.group_by(*keys)):
            key = (str(row[0]), str(row[1]) if per_channel else "")
            counts.setdefault(key, {})["impressions"] = int(row[-1])
        for row in await self.session.execute(done.group_by(*keys, outcome.kind)):
            key = (str(row[0]), str(row[1]) if per_channel else "")
            counts.setdefault(key, {})[str(row[-2])] = int(row[-1])
        return counts
