"""Back office sales channels: each channel's sync status (push/pull mode, connector, last sync, pending and dead
pushes, the drift alert of the last reconciliation) and its controls: connect a new channel, connect or disconnect
an existing one, change its allocation, reconcile or pull now, retry dead pushes. The same commerce services as
/api/v1/channels; every change is in the audit log. This replaces the old token page /merchant/channels."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api import accounts
from api.deps import get_database
from api.http.merchant.backoffice import (
    Editor,
    PageRoute,
    Staff,
    Viewer,
    field_error,
    form_dict,
    invalid,
    redirect,
    render,
)
from commerce.channels import service as channels
from commerce.channels import sync
from commerce.channels.connections import connect_channel, disconnect_channel
from commerce.channels.errors import NoConnector
from commerce.channels.schemas import AllocationIn, ChannelIn
from commerce.channels.service import CONNECTOR_NAMES, SYNC_MODES
from kit.errors import ShopTalkError
from kit.outbox import DeliveryError

router = APIRouter(route_class=PageRoute, include_in_schema=False)
ALLOCATIONS = ("shared", "buffer", "share")
CONFIG_FIELDS = ("base_url", "secret", "access_token", "location_id")  # what the connectors read (docs/channels.md)


def _config(form: dict[str, str]) -> dict[str, Any]:
    return {key: form.get(key, "").strip() for key in CONFIG_FIELDS if form.get(key, "").strip()}


def _field_of(error: ShopTalkError) -> str:
    return str(error.extra.get("field") or error.extra.get("key") or {
        "channel_exists": "code", "invalid_sync_mode": "sync_mode", "invalid_connector": "connector",
        "invalid_allocation": "allocation_value"}.get(error.code, "form"))


async def _page(request: Request, who: Staff, *, status: int = 200, error: dict[str, Any] | None = None,
                form: dict[str, str] | None = None, target: str | None = None) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        rows = [await sync.channel_status(session, channel=c) for c in await channels.list_channels(session)]
        dead = {r.code: await sync.dead_letters(session, code=r.code, limit=5) for r in rows if r.dead}
    return render(request, "channels.html", {
        "channels": rows, "dead": dead, "modes": SYNC_MODES, "connectors": CONNECTOR_NAMES,
        "allocations": ALLOCATIONS, "error": error, "form": form or {}, "target": target,
        "notice": request.query_params.get("notice")}, status=status, who=who)


@router.get("/backoffice/channels")
async def channel_list(request: Request, who: Viewer) -> HTMLResponse:
    who.require("channels")
    return await _page(request, who)


async def _audit(request: Request, who: Staff, action: str, code: str, details: dict[str, Any] | None = None) -> None:
    async with get_database(request).unit_of_work() as session:
        await accounts.record(session, actor=who.actor, area="channels", action=action, subject=code,
                              details=details)


@router.post("/backoffice/channels/new")
async def new_channel(request: Request, who: Editor) -> Response:
    """A new channel, checked by the API's ChannelIn and `create_channel` (a connector's config must be whole)."""
    who.require("channels")
    form = form_dict(await request.form())
    try:
        try:
            data = ChannelIn.model_validate({
                "code": form.get("code", "").strip(), "name": form.get("name", "").strip(),
                "kind": form.get("kind", "").strip(), "sync_mode": form.get("sync_mode", "direct"),
                "connector": form.get("connector", "none"), "config": _config(form)})
        except ValidationError as error:
            raise invalid(error, field_of=lambda loc: loc[0]) from None
        async with get_database(request).unit_of_work() as session:
            channel = await channels.create_channel(session, code=data.code, name=data.name, kind=data.kind,
                                                    sync_mode=data.sync_mode, connector=data.connector,
                                                    config=data.config)
            await accounts.record(session, actor=who.actor, area="channels", action="channel added",
                                  subject=channel.code, details={"connector": channel.connector,
                                                                 "sync_mode": channel.sync_mode})
    except ShopTalkError as error:
        if error.status in (401, 403):
            raise
        error.extra["field"] = _field_of(error)
        form.pop("secret", None)
        form.pop("access_token", None)
        return await _page(request, who, status=error.status, error=field_error(error), form=form, target="new")
    return redirect("/backoffice/channels", notice=f"Channel {data.code} added.")


@router.post("/backoffice/channels/{code}/connect")
async def connect(request: Request, who: Editor, code: str) -> Response:
    who.require("channels")
    form = form_dict(await request.form())
    try:
        async with get_database(request).unit_of_work() as session:
            channel = await connect_channel(session, code=code, connector=form.get("connector", ""),
                                            sync_mode=form.get("sync_mode", ""), config=_config(form))
            await accounts.record(session, actor=who.actor, area="channels", action="channel connected",
                                  subject=code, details={"connector": channel.connector,
                                                         "sync_mode": channel.sync_mode})
    except ShopTalkError as error:
        if error.status in (401, 403, 404):
            raise
        error.extra["field"] = _field_of(error)
        form.pop("secret", None)
        form.pop("access_token", None)
        return await _page(request, who, status=error.status, error=field_error(error), form=form, target=code)
    return redirect("/backoffice/channels", notice=f"{code} is connected ({channel.connector}, {channel.sync_mode}).")


@router.post("/backoffice/channels/{code}/disconnect")
async def disconnect(request: Request, who: Editor, code: str) -> Response:
    who.require("channels")
    async with get_database(request).unit_of_work() as session:
        before = (await channels.get_channel(session, code=code)).connector
        await disconnect_channel(session, code=code)
        await accounts.record(session, actor=who.actor, area="channels", action="channel disconnected",
                              subject=code, details={"connector": before})
    return redirect("/backoffice/channels", notice=f"{code} is disconnected: nothing is pushed or pulled.")


@router.post("/backoffice/channels/{code}/allocation")
async def allocation(request: Request, who: Editor, code: str, allocation: Annotated[str, Form(max_length=10)],
                     allocation_value: Annotated[str, Form(max_length=12)] = "0",
                     safety_stock: Annotated[str, Form(max_length=12)] = "0") -> Response:
    who.require("channels")
    form = {"allocation": allocation, "allocation_value": allocation_value, "safety_stock": safety_stock}
    try:
        try:
            data = AllocationIn.model_validate({k: v.strip() or "0" if k != "allocation" else v
                                                for k, v in form.items()})
        except ValidationError as error:
            raise invalid(error, field_of=lambda loc: loc[0]) from None
        async with get_database(request).unit_of_work() as session:
            await channels.set_allocation(session, code=code, allocation=data.allocation,
                                          allocation_value=data.allocation_value, safety_stock=data.safety_stock)
            await accounts.record(session, actor=who.actor, area="channels", action="allocation changed",
                                  subject=code, details=data.model_dump())
    except ShopTalkError as error:
        if error.status in (401, 403, 404):
            raise
        error.extra["field"] = _field_of(error)
        return await _page(request, who, status=error.status, error=field_error(error), form=form, target=code)
    return redirect("/backoffice/channels", notice=f"{code}: allocation saved.")


@router.post("/backoffice/channels/{code}/reconcile")
async def reconcile(request: Request, who: Editor, code: str) -> Response:
    """Compare the channel's stock with ours now and repair what drifted (StockSync.reconcile, as the API)."""
    who.require("channels")
    try:
        result = await request.app.state.stock_sync.reconcile(code=code, repair=True)
    except (NoConnector, DeliveryError) as exc:
        return redirect("/backoffice/channels", notice=f"{code}: not reconciled: {exc}")
    await _audit(request, who, "reconciled", code, {"checked": result.checked, "drifted": result.drifted,
                                                    "repaired": result.repaired, "error": result.error})
    if result.error:
        return redirect("/backoffice/channels", notice=f"{code}: the channel could not be read: {result.error}")
    return redirect("/backoffice/channels", notice=f"{code}: {result.checked} SKUs checked, {result.drifted} drifted, "
                                                   f"{result.repaired} repaired.")


@router.post("/backoffice/channels/{code}/pull")
async def pull(request: Request, who: Editor, code: str) -> Response:
    who.require("channels")
    try:
        result = await request.app.state.stock_sync.pull_orders(code=code)
    except (NoConnector, DeliveryError) as exc:
        return redirect("/backoffice/channels", notice=f"{code}: orders not pulled: {exc}")
    await _audit(request, who, "orders pulled", code, {"imported": result.imported, "rejected": result.rejected})
    return redirect("/backoffice/channels", notice=f"{code}: {result.imported} orders imported, "
                                                   f"{result.rejected} rejected.")


@router.post("/backoffice/channels/{code}/retry")
async def retry(request: Request, who: Editor, code: str) -> Response:
    who.require("channels")
    async with get_database(request).unit_of_work() as session:
        count = await sync.retry_dead_letters(session, code=code)
        await accounts.record(session, actor=who.actor, area="channels", action="dead pushes retried",
                              subject=code, details={"queued": count})
    return redirect("/backoffice/channels", notice=f"{code}: {count} dead pushes queued again.")
