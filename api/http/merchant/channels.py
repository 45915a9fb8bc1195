"""Sales channels: the merchant's sync view and controls, the inbound order webhook (people use the back office's
/backoffice/channels)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from api.auth import MerchantDep
from api.deps import DatabaseDep, SessionDep
from api.errors import PROBLEM_JSON
from commerce.channels import service as channels
from commerce.channels import sync
from commerce.channels.connectors import SIGNATURE_HEADER, signature_matches
from commerce.channels.errors import ChannelUnreachable, InvalidSignature, NoConnector
from commerce.channels.schemas import (
    AllocationIn,
    ChannelIn,
    ChannelOrderIn,
    ChannelOrderOut,
    ChannelStatusOut,
    DeadLetterOut,
    PullOut,
    ReconciliationOut,
    RetryIn,
    RetryOut,
)
from kit.errors import InvalidInput
from kit.outbox import DeliveryError

router = APIRouter(tags=["channels"])
PREFIX = "/api/v1/channels"


def _stock_sync(request: Request) -> sync.StockSync:
    stock_sync: sync.StockSync = request.app.state.stock_sync
    return stock_sync


@router.get(PREFIX, response_model=list[ChannelStatusOut])
async def list_channels(session: SessionDep, _: MerchantDep) -> list[ChannelStatusOut]:
    """Every channel with its last sync, push lag, pending and dead-lettered pushes, and last drift found."""
    return [await sync.channel_status(session, channel=channel) for channel in await channels.list_channels(session)]


@router.post(PREFIX, response_model=ChannelStatusOut, status_code=status.HTTP_201_CREATED)
async def create_channel(data: ChannelIn, session: SessionDep, _: MerchantDep) -> ChannelStatusOut:
    channel = await channels.create_channel(
        session, code=data.code, name=data.name, kind=data.kind, sync_mode=data.sync_mode, config=data.config,
        connector=data.connector, allocation=data.allocation, allocation_value=data.allocation_value,
        safety_stock=data.safety_stock)
    return await sync.channel_status(session, channel=channel)


@router.get(PREFIX + "/{code}", response_model=ChannelStatusOut)
async def channel_status(code: str, session: SessionDep, _: MerchantDep) -> ChannelStatusOut:
    return await sync.channel_status(session, channel=await channels.get_channel(session, code=code))


@router.put(PREFIX + "/{code}/allocation", response_model=ChannelStatusOut)
async def set_allocation(code: str, data: AllocationIn, session: SessionDep, _: MerchantDep) -> ChannelStatusOut:
    channel = await channels.set_allocation(session, code=code, allocation=data.allocation,
                                            allocation_value=data.allocation_value, safety_stock=data.safety_stock)
    return await sync.channel_status(session, channel=channel)


@router.get(PREFIX + "/{code}/dead-letters", response_model=list[DeadLetterOut])
async def dead_letters(code: str, session: SessionDep, _: MerchantDep) -> list[DeadLetterOut]:
    return await sync.dead_letters(session, code=code)


@router.post(PREFIX + "/{code}/dead-letters/retry", response_model=RetryOut)
async def retry_dead_letters(code: str, data: RetryIn, session: SessionDep, _: MerchantDep) -> RetryOut:
    """Queue dead-lettered pushes again: the given event ids, or all of the channel's when none are given."""
    return RetryOut(retried=await sync.retry_dead_letters(session, code=code, event_ids=data.event_ids))


@router.post(PREFIX + "/{code}/reconcile", response_model=ReconciliationOut)
async def reconcile(code: str, request: Request, _: MerchantDep, repair: bool = True) -> ReconciliationOut:
    """Compare the channel's stock with ours now; with repair, queue pushes for what drifted."""
    try:
        return await _stock_sync(request).reconcile(code=code, repair=repair)
    except (NoConnector, DeliveryError) as exc:
        raise _unreachable(exc) from exc


@router.post(PREFIX + "/{code}/pull", response_model=PullOut)
async def pull(code: str, request: Request, _: MerchantDep) -> PullOut:
    """Import the channel's new orders now (they are pulled on a schedule anyway)."""
    try:
        return await _stock_sync(request).pull_orders(code=code)
    except (NoConnector, DeliveryError) as exc:
        raise _unreachable(exc) from exc


def _unreachable(exc: Exception) -> Exception:
    if isinstance(exc, NoConnector):
        return exc
    return ChannelUnreachable(str(exc))


@router.post(PREFIX + "/{code}/orders", response_model=ChannelOrderOut, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": ChannelOrderOut}, 401: {}, 409: {}})
async def receive_order(code: str, request: Request, database: DatabaseDep,
                        signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None) -> Response:
    """Inbound order webhook (generic connector): signed with the channel's secret; exactly once per order id."""
    body = await request.body()
    async with database.unit_of_work() as session:
        channel = await channels.get_channel(session, code=code)
        secret = str(channel.config.get("secret") or "")
    if not secret or channel.connector != "webhook" or not signature_matches(secret, body, signature):
        raise InvalidSignature(f"Sign the raw body with the channel's secret in {SIGNATURE_HEADER}: sha256=<hex>.")
    try:
        order = ChannelOrderIn.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidInput("The order does not match the webhook contract (docs/channels.md).",
                           code="invalid_channel_order",
                           errors=[{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
                           ) from exc
    async with database.unit_of_work() as session:
        result = await sync.import_channel_order(session, channel_code=code, order=order)
    if result.rejection is not None:
        # The rejection is recorded for the merchant, so this answer is rendered here rather than raised.
        return JSONResponse(result.rejection.to_problem(request.url.path), status_code=result.rejection.status,
                            media_type=PROBLEM_JSON)
    assert result.order is not None
    out = ChannelOrderOut(external_id=order.external_id, order_number=result.order.number,
                          status=result.order.status, created=result.created)
    return JSONResponse(out.model_dump(), status_code=201 if result.created else 200)
