"""Inventory rules: stock per SKU per location, reservations with expiry, never below zero."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog.errors import UnknownSku
from commerce.catalog.repository import CatalogRepository
from commerce.inventory.errors import (
    InsufficientStock,
    InvalidQuantity,
    LocationNotFound,
    ReservationClosed,
    ReservationNotFound,
    StockBelowReserved,
)
from commerce.inventory.models import Location, Reservation, StockLevel
from commerce.inventory.repository import InventoryRepository
from commerce.inventory.schemas import StockLevelOut
from kit.clock import utcnow

StockListener = Callable[[AsyncSession, list[str]], Awaitable[None]]
# Called in the same transaction after stock of these SKUs changed (channel sync writes its outbox rows).
stock_listeners: list[StockListener] = []


async def _stock_changed(session: AsyncSession, skus: list[str]) -> None:
    for listener in stock_listeners:
        await listener(session, skus)


async def create_location(session: AsyncSession, *, code: str, name: str, country: str) -> Location:
    location = Location(code=code, name=name, country=country.upper())
    session.add(location)
    await session.flush()
    return location


async def _location(repo: InventoryRepository, code: str) -> Location:
    location = await repo.location_by_code(code)
    if location is None:
        raise LocationNotFound(f"No stock location {code!r}.")
    return location


async def _require_sku(session: AsyncSession, sku: str) -> None:
    if not await CatalogRepository(session).sku_exists([sku]):
        raise UnknownSku(f"No product variant has SKU {sku!r}.", sku=sku)


async def set_stock(session: AsyncSession, *, sku: str, location: str, on_hand: int) -> StockLevel:
    """Set the counted quantity on hand (a stock take); refuses to drop below what is reserved."""
    if on_hand < 0:
        raise InvalidQuantity("on_hand cannot be negative.")
    await _require_sku(session, sku)
    repo = InventoryRepository(session)
    loc = await _location(repo, location)
    level = await repo.level(sku, loc.id)
    now = utcnow()
    if level is None:
        level = StockLevel(sku=sku, location_id=loc.id, on_hand=on_hand, reserved=0, version=0, updated_at=now)
        session.add(level)
        await session.flush()
    else:
        if not await repo.try_adjust(sku, loc.id, on_hand - level.on_hand, now):
            raise StockBelowReserved(f"{sku} at {location} has more units reserved than {on_hand}.")
        await session.refresh(level)
    await _stock_changed(session, [sku])
    return level


async def adjust_stock(session: AsyncSession, *, sku: str, location: str, delta: int) -> StockLevel:
    """Add or remove units on hand atomically; on hand never drops below reserved."""
    if delta == 0:
        raise InvalidQuantity("An adjustment must change the quantity.")
    await _require_sku(session, sku)
    repo = InventoryRepository(session)
    loc = await _location(repo, location)
    level = await repo.level(sku, loc.id)
    if level is None:
        if delta < 0:
            raise StockBelowReserved(f"{sku} has no stock at {location} to remove.")
        return await set_stock(session, sku=sku, location=location, on_hand=delta)
    if not await repo.try_adjust(sku, loc.id, delta, utcnow()):
        raise StockBelowReserved(f"Removing {-delta} of {sku} at {location} would leave less than is reserved.")
    await session.refresh(level)
    await _stock_changed(session, [sku])
    return level


async def reserve_stock(session: AsyncSession, *, sku: str, quantity: int, location: str | None = None,
                        reference: str | None = None, ttl_seconds: int | None = None,
                        location_ids: Sequence[int] | None = None) -> Reservation:
    """Hold `quantity` units of `sku` at one location.

    Without a location, the location with the most available stock that can cover the whole quantity is
    used. Atomic whatever the concurrency; raises InsufficientStock when no location can cover it.
    """
    if quantity <= 0:
        raise InvalidQuantity("Quantity must be at least 1.")
    await _require_sku(session, sku)
    repo = InventoryRepository(session)
    now = utcnow()
    if location is not None:
        candidates = [(await _location(repo, location)).id]
        location_ids = candidates  # "only N available" counts the location asked for, not every one
    else:
        levels = [lvl for lvl, _ in await repo.levels_for([sku])
                  if location_ids is None or lvl.location_id in location_ids]
        levels.sort(key=lambda lvl: lvl.on_hand - lvl.reserved, reverse=True)
        candidates = [lvl.location_id for lvl in levels]
    for location_id in candidates:
        if await repo.try_reserve(sku, location_id, quantity, now):
            reservation = Reservation(
                sku=sku, location_id=location_id, quantity=quantity, status="active", reference=reference,
                expires_at=now + timedelta(seconds=ttl_seconds) if ttl_seconds else None, created_at=now)
            session.add(reservation)
            await session.flush()
            await _stock_changed(session, [sku])
            return reservation
    available = sum((await repo.available_by_sku([sku], location_ids)).values())
    raise InsufficientStock(f"Only {max(available, 0)} of {sku} available; {quantity} requested.",
                            sku=sku, available=max(available, 0), requested=quantity)


async def _close(session: AsyncSession, reservation_id: int, status: str, *, consume: bool) -> Reservation:
    repo = InventoryRepository(session)
    now = utcnow()
    reservation = await repo.close_reservation(reservation_id, status, now)
    if reservation is None:
        existing = await session.get(Reservation, reservation_id)
        if existing is None:
            raise ReservationNotFound(f"No reservation {reservation_id}.")
        raise ReservationClosed(f"Reservation {reservation_id} is already {existing.status}.",
                                reservation_status=existing.status)
    await repo.unreserve(reservation.sku, reservation.location_id, reservation.quantity, consume=consume, now=now)
    await _stock_changed(session, [reservation.sku])
    return reservation


async def release_reservation(session: AsyncSession, *, reservation_id: int) -> Reservation:
    """Give reserved units back to available stock (cart emptied, order cancelled)."""
    return await _close(session, reservation_id, "released", consume=False)


async def commit_reservation(session: AsyncSession, *, reservation_id: int) -> Reservation:
    """The units left the shop (order paid): on hand and reserved both drop."""
    return await _close(session, reservation_id, "committed", consume=True)


async def release_expired_reservations(session: AsyncSession, *, limit: int = 500) -> int:
    """Release reservations past their expiry; safe to run from several workers at once."""
    repo = InventoryRepository(session)
    released = 0
    for reservation_id in await repo.expired_reservation_ids(utcnow(), limit):
        try:
            await _close(session, reservation_id, "expired", consume=False)
            released += 1
        except ReservationClosed:
            continue
    return released


async def available_stock(session: AsyncSession, *, skus: Sequence[str],
                          location_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Units that can still be sold per SKU (on hand minus reserved), 0 for unknown or unstocked SKUs."""
    found = await InventoryRepository(session).available_by_sku(skus, location_ids)
    return {sku: max(0, found.get(sku, 0)) for sku in skus}


async def stock_levels(session: AsyncSession, *, skus: Sequence[str]) -> list[StockLevelOut]:
    return [StockLevelOut(sku=level.sku, location=location.code, on_hand=level.on_hand, reserved=level.reserved,
                          available=level.on_hand - level.reserved)
            for level, location in await InventoryRepository(session).levels_for(skus)]


async def locations(session: AsyncSession) -> list[Location]:
    return list(await InventoryRepository(session).locations())


async def return_to_stock(session: AsyncSession, *, reservation_id: int) -> None:
    """Undo a reservation whatever its state: release it if active, put the units back if committed."""
    reservation = await session.get(Reservation, reservation_id)
    if reservation is None:
        raise ReservationNotFound(f"No reservation {reservation_id}.")
    if reservation.status == "active":
        await release_reservation(session, reservation_id=reservation_id)
    elif reservation.status == "committed":
        repo = InventoryRepository(session)
        if not await repo.try_adjust(reservation.sku, reservation.location_id, reservation.quantity, utcnow()):
            raise StockBelowReserved(f"Could not restock {reservation.sku}.")
        reservation.status = "returned"
        await session.flush()
        await _stock_changed(session, [reservation.sku])


async def return_units(session: AsyncSession, *, reservation_id: int, quantity: int) -> None:
    """Put `quantity` units of a sold (committed) reservation back on hand: part of an order line came back.

    The reservation keeps only what is still sold, so cancelling the order later returns the rest, never twice."""
    reservation = await session.get(Reservation, reservation_id)
    if reservation is None:
        raise ReservationNotFound(f"No reservation {reservation_id}.")
    if reservation.status != "committed" or not 0 < quantity <= reservation.quantity:
        raise ReservationClosed(f"Reservation {reservation_id} has no {quantity} sold units to return.",
                                reservation_status=reservation.status)
    if not await InventoryRepository(session).try_adjust(reservation.sku, reservation.location_id, quantity,
                                                         utcnow()):
        raise StockBelowReserved(f"Could not restock {reservation.sku}.")
    if quantity == reservation.quantity:
        reservation.status = "returned"  # quantity stays (> 0 by constraint): the record of what came back
    else:
        reservation.quantity -= quantity
    await session.flush()
    await _stock_changed(session, [reservation.sku])
