from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.inventory.models import Reservation
from commerce.orders.models import Order, OrderLine, OrderStatusChange
from commerce.payments.models import Payment, PaymentEvent, PaymentMethod, PaymentRefund, PaymentSetting


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_order(self, order_id: int) -> Order | None:
        order: Order | None = await self.session.scalar(
            select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True))
        return order

    async def for_order(self, order_id: int) -> Sequence[Payment]:
        return (await self.session.scalars(
            select(Payment).where(Payment.order_id == order_id).order_by(Payment.id)
            .execution_options(populate_existing=True))).all()

    async def by_reference(self, provider: str, reference: str, *, fresh: bool = False) -> Payment | None:
        query = select(Payment).where(Payment.provider == provider, Payment.reference == reference)
        if fresh:  # re-read after taking the order's lock: another transaction may have changed it meanwhile
            query = query.execution_options(populate_existing=True)
        return await self.session.scalar(query)

    async def event_seen(self, provider: str, event_id: str) -> bool:
        found = await self.session.scalar(
            select(PaymentEvent.id).where(PaymentEvent.provider == provider, PaymentEvent.event_id == event_id))
        return found is not None

    async def refunds_for(self, payment_ids: Sequence[int]) -> Sequence[PaymentRefund]:
        if not payment_ids:
            return []
        return (await self.session.scalars(select(PaymentRefund).where(PaymentRefund.payment_id.in_(payment_ids))
                                           .order_by(PaymentRefund.id))).all()

    async def refund_by_key(self, payment_id: int, key: str) -> PaymentRefund | None:
        return await self.session.scalar(select(PaymentRefund).where(
            PaymentRefund.payment_id == payment_id, PaymentRefund.idempotency_key == key))

    async def methods(self, *, country: str | None = None, channel: str | None = None) -> Sequence[PaymentMethod]:
        query = select(PaymentMethod).order_by(PaymentMethod.position, PaymentMethod.id)
        if country is not None:
            query = query.where(or_(PaymentMethod.country == country, PaymentMethod.country == "*"))
        if channel is not None:
            query = query.where(or_(PaymentMethod.channel == channel, PaymentMethod.channel == "*"))
        return (await self.session.scalars(query)).all()

    async def method(self, country: str, channel: str, provider: str) -> PaymentMethod | None:
        return await self.session.scalar(select(PaymentMethod).where(
            PaymentMethod.country == country, PaymentMethod.channel == channel, PaymentMethod.provider == provider))

    async def expired_order_ids(self, now: datetime, limit: int, *, created_before: datetime) -> Sequence[int]:
        past_own = Order.expires_at.is_not(None) & (Order.expires_at <= now)
        past_shop = Order.expires_at.is_(None) & (Order.created_at <= created_before)
        return (await self.session.scalars(
            select(Order.id).where(Order.status == "pending_payment", past_own | past_shop)
            .order_by(Order.id).limit(limit))).all()

    async def order_lines(self, order_id: int) -> Sequence[OrderLine]:
        return (await self.session.scalars(select(OrderLine).where(OrderLine.order_id == order_id)
                                           .order_by(OrderLine.id))).all()

    async def returned_quantities(self, payment_ids: Sequence[int]) -> dict[int, int]:
        """Units already refunded per order line (from the refunds' lines)."""
        returned: dict[int, int] = {}
        for refund in await self.refunds_for(payment_ids):
            for line in refund.lines or []:
                returned[int(line["line_id"])] = returned.get(int(line["line_id"]), 0) + int(line["quantity"])
        return returned

    async def delivered_at(self, order_id: int) -> datetime | None:
        """When the order was (last) marked delivered; None when it never was."""
        return await self.session.scalar(
            select(OrderStatusChange.changed_at).where(OrderStatusChange.order_id == order_id,
                                                       OrderStatusChange.to_status == "delivered")
            .order_by(OrderStatusChange.id.desc()).limit(1))

    async def setting(self, key: str) -> PaymentSetting | None:
        return await self.session.get(PaymentSetting, key)

    async def reservations_active(self, order_id: int) -> bool:
        """Every line of the order still holds its reserved units."""
        statuses = (await self.session.scalars(
            select(Reservation.status).join(OrderLine, OrderLine.reservation_id == Reservation.id)
            .where(OrderLine.order_id == order_id))).all()
        return bool(statuses) and all(status == "active" for status in statuses)
