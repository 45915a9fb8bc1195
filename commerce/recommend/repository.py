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
        shown = select(RecommendationImpression.model, func.count(RecommendationImpression.id))
        done = (select(RecommendationImpression.model, RecommendationOutcome.kind,
                       func.count(func.distinct(RecommendationOutcome.impression_id)))
                .join(RecommendationOutcome, RecommendationOutcome.impression_id == RecommendationImpression.id))
        if since is not None:
            shown = shown.where(RecommendationImpression.shown_at >= since)
            done = done.where(RecommendationImpression.shown_at >= since)
        counts: dict[str, dict[str, int]] = {}
        for model, total in await self.session.execute(shown.group_by(RecommendationImpression.model)):
            counts.setdefault(model, {})["impressions"] = int(total)
        for model, kind, total in await self.session.execute(
                done.group_by(RecommendationImpression.model, RecommendationOutcome.kind)):
            counts.setdefault(model, {})[kind] = int(total)
        return counts
