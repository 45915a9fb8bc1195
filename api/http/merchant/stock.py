from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api import accounts
from api.auth import MerchantDep
from api.deps import SessionDep
from api.params import PathId
from commerce.catalog import service as catalog
from commerce.inventory import service as inventory
from commerce.inventory.schemas import ReservationOut, ReserveIn, StockAdjustIn, StockLevelOut, StockSetIn

router = APIRouter(prefix="/api/v1/stock", tags=["stock"])


@router.get("", response_model=list[StockLevelOut])
async def stock_for(session: SessionDep, sku: Annotated[list[str], Query(min_length=1, max_length=200)]
                    ) -> list[StockLevelOut]:
    """Stock per location for one or more SKUs (`?sku=A&sku=B`)."""
    await catalog.get_variants(session, skus=sku)
    return await inventory.stock_levels(session, skus=sku)


@router.post("/adjustments", response_model=StockLevelOut)
async def adjust(data: StockAdjustIn, session: SessionDep, principal: MerchantDep) -> StockLevelOut:
    level = await inventory.adjust_stock(session, sku=data.sku, location=data.location, delta=data.delta)
    await accounts.record(session, actor=accounts.token_actor(principal.token_id, principal.name), area="stock",
                          action="stock add" if data.delta > 0 else "stock remove", subject=data.sku,
                          details={"location": data.location, "before": level.on_hand - data.delta,
                                   "after": level.on_hand, "reason": "API"})
    return next(lvl for lvl in await inventory.stock_levels(session, skus=[data.sku]) if lvl.location == data.location)


@router.put("/levels", response_model=StockLevelOut)
async def set_level(data: StockSetIn, session: SessionDep, principal: MerchantDep) -> StockLevelOut:
    before = {lvl.location: lvl.on_hand for lvl in await inventory.stock_levels(session, skus=[data.sku])}
    await inventory.set_stock(session, sku=data.sku, location=data.location, on_hand=data.on_hand)
    await accounts.record(session, actor=accounts.token_actor(principal.token_id, principal.name), area="stock",
                          action="stock take", subject=data.sku,
                          details={"location": data.location, "before": before.get(data.location, 0),
                                   "after": data.on_hand, "reason": "API"})
    return next(lvl for lvl in await inventory.stock_levels(session, skus=[data.sku]) if lvl.location == data.location)


@router.post("/reservations", response_model=ReservationOut, status_code=status.HTTP_201_CREATED)
async def reserve(data: ReserveIn, session: SessionDep, _: MerchantDep) -> ReservationOut:
    reservation = await inventory.reserve_stock(session, sku=data.sku, quantity=data.quantity,
                                                location=data.location, reference=data.reference,
                                                ttl_seconds=data.ttl_seconds)
    return ReservationOut.model_validate(reservation)


@router.post("/reservations/{reservation_id}/release", response_model=ReservationOut)
async def release(reservation_id: PathId, session: SessionDep, _: MerchantDep) -> ReservationOut:
    return ReservationOut.model_validate(await inventory.release_reservation(session, reservation_id=reservation_id))


@router.post("/reservations/{reservation_id}/commit", response_model=ReservationOut)
async def commit(reservation_id: PathId, session: SessionDep, _: MerchantDep) -> ReservationOut:
    return ReservationOut.model_validate(await inventory.commit_reservation(session, reservation_id=reservation_id))
