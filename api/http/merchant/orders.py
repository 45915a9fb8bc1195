from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from api.auth import MerchantDep
from api.deps import SessionDep
from api.params import AfterId, PathId
from commerce.orders import service as orders
from commerce.orders.schemas import OrderIn, OrderOut, TransitionIn

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])


@router.post("", response_model=OrderOut, status_code=status.HTTP_201_CREATED,
             responses={200: {"description": "The order already existed for this (channel, external_id)."}})
async def create_order(data: OrderIn, session: SessionDep, response: Response, _: MerchantDep) -> OrderOut:
    """Create an order and reserve its stock; repeating the same (channel, external_id) returns the first."""
    order, created = await orders.create_order(session, data=data)
    if not created:
        response.status_code = status.HTTP_200_OK
    return OrderOut.model_validate(order)


@router.get("", response_model=list[OrderOut])
async def list_orders(session: SessionDep, _: MerchantDep,
                      order_status: Annotated[str | None, Query(alias="status", max_length=20)] = None,
                      after_id: AfterId = 0, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[OrderOut]:
    return [OrderOut.model_validate(o) for o in await orders.list_orders(session, status=order_status,
                                                                        after_id=after_id, limit=limit)]


@router.get("/by-ref/{public_ref}", response_model=OrderOut)
async def get_order_by_public_ref(public_ref: Annotated[str, Path(max_length=40)], session: SessionDep,
                                  _: MerchantDep) -> OrderOut:
    """The order a shopper quotes by its public reference (any case, with or without dashes)."""
    return OrderOut.model_validate(await orders.get_order_by_public_ref(session, public_ref=public_ref))


@router.get("/{order_id}", response_model=OrderOut)
async def get_order(order_id: PathId, session: SessionDep, _: MerchantDep) -> OrderOut:
    return OrderOut.model_validate(await orders.get_order(session, order_id=order_id))


@router.post("/{order_id}/transitions", response_model=OrderOut)
async def transition(order_id: PathId, data: TransitionIn, session: SessionDep, _: MerchantDep) -> OrderOut:
    """Move the order along its lifecycle (e.g. mark it paid, shipped with carrier and tracking)."""
    order = await orders.transition_order(session, order_id=order_id, to_status=data.status, note=data.note,
                                          carrier=data.carrier, tracking_number=data.tracking_number)
    return OrderOut.model_validate(order)
