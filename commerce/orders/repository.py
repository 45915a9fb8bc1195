from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Integer, Select, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from commerce.channels.models import SalesChannel
from commerce.orders.models import Order


def _order_with_children() -> Select[Order]:
    return select(Order).options(selectinload(Order.lines), selectinload(Order.history))


# The chat's order lookups, built once (SQLAlchemy reuses their cache key and compiled form).
_BY_NUMBER = _order_with_children().where(Order.number == bindparam("number"))
_BY_PUBLIC_REF = _order_with_children().where(Order.public_ref == bindparam("public_ref"))
_FOR_SHOPPER = (_order_with_children().where(Order.shopper_id == bindparam("shopper_id"))
                .order_by(Order.created_at.desc(), Order.id.desc()).limit(bindparam("limit", type_=Integer)))


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_id(self, order_id: int, *, for_update: bool = False) -> Order | None:
        query = _order_with_children().where(Order.id == order_id)
        if for_update:
            query = query.with_for_update()
        order: Order | None = await self.session.scalar(query.execution_options(populate_existing=True))
        return order

    async def by_number(self, number: str) -> Order | None:
        return await self.session.scalar(_BY_NUMBER, {"number": number})

    async def by_public_ref(self, public_ref: str) -> Order | None:
        return await self.session.scalar(_BY_PUBLIC_REF, {"public_ref": public_ref})

    async def link_guest_orders(self, *, email: str, shopper_id: int) -> int:
        result = await self.session.execute(
            update(Order).where(func.lower(Order.email) == email, Order.shopper_id.is_(None))
            .values(shopper_id=shopper_id).execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    async def by_external(self, channel_id: int, external_id: str) -> Order | None:
        return await self.session.scalar(
            _order_with_children().where(Order.channel_id == channel_id, Order.external_id == external_id)
            .execution_options(populate_existing=True))

    async def for_shopper(self, shopper_id: int, limit: int) -> Sequence[Order]:
        return (await self.session.scalars(_FOR_SHOPPER, {"shopper_id": shopper_id, "limit": limit})).all()

    async def page(self, *, status: str | None, after_id: int, limit: int) -> Sequence[Order]:
        query = _order_with_children().where(Order.id > after_id).order_by(Order.id).limit(limit)
        if status:
            query = query.where(Order.status == status)
        return (await self.session.scalars(query)).all()

    async def recent_countries(self, *, orders: int, limit: int) -> list[str]:
        """The delivery countries of the latest `orders` orders, most frequent first (one statement)."""
        latest = (select(Order.country).where(Order.country.is_not(None)).order_by(Order.id.desc()).limit(orders)
                  .subquery())
        times = func.count()
        rows = await self.session.execute(select(latest.c.country, times).group_by(latest.c.country)
                                          .order_by(times.desc(), latest.c.country).limit(limit))
        return [str(country).upper() for country, _ in rows.all()]

    async def channel_by_code(self, code: str) -> SalesChannel | None:
        return await self.session.scalar(select(SalesChannel).where(SalesChannel.code == code))
