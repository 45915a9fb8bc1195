"""The integrity counts of a checkout benchmark run (bench/checkout.py, both `--through` modes), read from the
database after the run and after the expiry job: every figure must be 0 but orders_paid."""
from __future__ import annotations

from sqlalchemy import func, select

from commerce.inventory.models import Reservation, StockLevel
from commerce.orders.models import Order, OrderLine, OrderStatusChange
from commerce.payments.models import PaymentEvent
from kit.db import Database


async def integrity(database: Database, *, stock: int, sku: str = "TEE-1") -> dict[str, int]:
    """orders_paid; orders_paid_twice (two `paid` transitions, or more paid than the total); units_oversold (more
    units committed than there were, or stock below zero); reservations_leaked_after_expiry (an expired order's
    line whose reservation is still active: one join on OrderLine.reservation_id); amount_mismatches (payment
    events whose amount or currency differed from the order)."""
    async with database.sessions() as session:
        paid_twice = await session.scalar(select(func.count()).select_from(
            select(OrderStatusChange.order_id).where(OrderStatusChange.to_status == "paid")
            .group_by(OrderStatusChange.order_id).having(func.count() > 1).subquery()))
        overpaid = await session.scalar(select(func.count()).where(Order.amount_paid > Order.total))
        levels = (await session.scalars(select(StockLevel).where(StockLevel.sku == sku))).all()
        leaked = await session.scalar(select(func.count()).select_from(Reservation)
                                      .join(OrderLine, OrderLine.reservation_id == Reservation.id)
                                      .join(Order, Order.id == OrderLine.order_id)
                                      .where(Order.status == "expired", Reservation.status == "active"))
        mismatches = await session.scalar(select(func.count()).where(PaymentEvent.outcome == "mismatch"))
        paid = await session.scalar(select(func.count()).where(Order.status == "paid"))
        sold = await session.scalar(select(func.coalesce(func.sum(Reservation.quantity), 0))
                                    .where(Reservation.status == "committed", Reservation.sku == sku))
    below_zero = sum(1 for level in levels if level.on_hand < 0)
    return {"orders_paid": int(paid or 0),
            "orders_paid_twice": int(paid_twice or 0) + int(overpaid or 0),
            "units_oversold": max(0, int(sold or 0) - stock) + below_zero,
            "reservations_leaked_after_expiry": int(leaked or 0),
            "amount_mismatches": int(mismatches or 0)}
