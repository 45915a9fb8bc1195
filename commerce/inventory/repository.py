from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.inventory.models import Location, Reservation, StockLevel


class InventoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def location_by_code(self, code: str) -> Location | None:
        return await self.session.scalar(select(Location).where(Location.code == code))

    async def locations(self) -> Sequence[Location]:
        return (await self.session.scalars(select(Location).order_by(Location.id))).all()

    async def level(self, sku: str, location_id: int) -> StockLevel | None:
        return await self.session.scalar(
            select(StockLevel).where(StockLevel.sku == sku, StockLevel.location_id == location_id))

    async def levels_for(self, skus: Sequence[str]) -> Sequence[tuple[StockLevel, Location]]:
        rows = await self.session.execute(
            select(StockLevel, Location).join(Location, Location.id == StockLevel.location_id)
            .where(StockLevel.sku.in_(list(skus))).order_by(StockLevel.sku, Location.id))
        return [(level, location) for level, location in rows]

    async def try_reserve(self, sku: str, location_id: int, quantity: int, now: datetime) -> bool:
        # One conditional statement: the database re-checks availability under the row lock.
        result = await self.session.execute(
            update(StockLevel)
            .where(StockLevel.sku == sku, StockLevel.location_id == location_id,
                   StockLevel.on_hand - StockLevel.reserved >= quantity)
            .values(reserved=StockLevel.reserved + quantity, version=StockLevel.version + 1, updated_at=now)
            .execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def unreserve(self, sku: str, location_id: int, quantity: int, *, consume: bool,
                        now: datetime) -> None:
        values = {"reserved": StockLevel.reserved - quantity, "version": StockLevel.version + 1,
                  "updated_at": now}
        if consume:
            values["on_hand"] = StockLevel.on_hand - quantity
        await self.session.execute(
            update(StockLevel).where(StockLevel.sku == sku, StockLevel.location_id == location_id)
            .values(**values).execution_options(synchronize_session=False))

    async def try_adjust(self, sku: str, location_id: int, delta: int, now: datetime) -> bool:
        result = await self.session.execute(
            update(StockLevel)
            .where(StockLevel.sku == sku, StockLevel.location_id == location_id,
                   StockLevel.on_hand + delta >= StockLevel.reserved)
            .values(on_hand=StockLevel.on_hand + delta, version=StockLevel.version + 1, updated_at=now)
            .execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def close_reservation(self, reservation_id: int, status: str, now: datetime) -> Reservation | None:
        """Move an active reservation to `status`; None if it was not active (someone else closed it)."""
        result = await self.session.execute(
            update(Reservation).where(Reservation.id == reservation_id, Reservation.status == "active")
            .values(status=status, closed_at=now).execution_options(synchronize_session=False))
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        return await self.session.get(Reservation, reservation_id, populate_existing=True)

    async def expired_reservation_ids(self, now: datetime, limit: int) -> Sequence[int]:
        return (await self.session.scalars(
            select(Reservation.id).where(Reservation.status == "active", Reservation.expires_at.is_not(None),
                                         Reservation.expires_at <= now).limit(limit))).all()

    async def available_by_sku(self, skus: Sequence[str],
                               location_ids: Sequence[int] | None = None) -> dict[str, int]:
        query = (select(StockLevel.sku, func.sum(StockLevel.on_hand - StockLevel.reserved))
                 .where(StockLevel.sku.in_(list(skus))).group_by(StockLevel.sku))
        if location_ids is not None:
            query = query.where(StockLevel.location_id.in_(list(location_ids)))
        return {sku: int(total or 0) for sku, total in (await self.session.execute(query))}
