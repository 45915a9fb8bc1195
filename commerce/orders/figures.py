"""Order figures for the merchant's dashboard and insights: orders placed since a time and their sales per
currency (never added across currencies)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.orders.models import Order

# Orders that are sales: paid (here or on the channel that sold them) and not undone.
SOLD_STATUSES = ("paid", "packed", "fulfilled", "shipped", "delivered", "return_requested")


@dataclass(frozen=True)
class OrderFigures:
    placed: int  # every order created in the period, whatever its state now
    sold: int  # of those, the ones in SOLD_STATUSES
    sales: dict[str, Decimal] = field(default_factory=dict)  # currency -> total of the sold ones


async def order_figures(session: AsyncSession, *, since: datetime) -> OrderFigures:
    placed = int(await session.scalar(select(func.count()).select_from(Order).where(Order.created_at >= since)) or 0)
    rows = (await session.execute(
        select(Order.currency, func.count(), func.sum(Order.total))
        .where(Order.created_at >= since, Order.status.in_(SOLD_STATUSES))
        .group_by(Order.currency).order_by(Order.currency))).all()
    return OrderFigures(placed=placed, sold=sum(int(n) for _, n, _ in rows),
                        sales={currency: Decimal(total or 0) for currency, _, total in rows})
