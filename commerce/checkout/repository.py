from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.checkout.models import DeliveryAddress


class CheckoutRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def last_address(self, *, owner: str, shopper_id: int | None) -> DeliveryAddress | None:
        condition = DeliveryAddress.owner == owner
        if shopper_id is not None:
            condition = condition | (DeliveryAddress.shopper_id == shopper_id)
        return await self.session.scalar(select(DeliveryAddress).where(condition)
                                         .order_by(DeliveryAddress.created_at.desc(), DeliveryAddress.id.desc())
                                         .limit(1))
