"""WhatsApp message templates: the back office screen and the merchant API to register them (name, language,
parameter count; bot.channels.templates). The agent console offers these when a shopper's 24-hour window is
closed. Owners only (permission `templates`); every change is in the audit log."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from api import accounts
from api.auth import MerchantDep
from api.deps import SessionDep, get_database
from api.http.merchant.backoffice import Editor, PageRoute, Staff, Viewer, field_error, redirect, render
from bot.channels import templates
from kit.errors import ShopTalkError
from kit.settings import Settings

router = APIRouter(route_class=PageRoute, include_in_schema=False)
api_router = APIRouter(tags=["merchant"])
PAGE = "/backoffice/whatsapp-templates"


def _seed(request: Request) -> dict[str, str]:
    settings: Settings = request.app.state.settings
    return settings.whatsapp.templates


async def _page(request: Request, who: Staff, *, status_code: int = 200, error: dict[str, object] | None = None,
                typed: dict[str, str] | None = None) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        found = await templates.registered(session, seed=_seed(request))
    return render(request, "whatsapp_templates.html", {
        "templates": list(found.values()), "error": error, "typed": typed or {},
        "notice": request.query_params.get("notice")}, status=status_code, who=who)


@router.get(PAGE)
async def template_list(request: Request, who: Viewer) -> HTMLResponse:
    who.require("templates")
    return await _page(request, who)


@router.post(PAGE)
async def template_save(request: Request, who: Editor, name: Annotated[str, Form(max_length=512)],
                        language: Annotated[str, Form(max_length=16)],
                        parameter_count: Annotated[str, Form(max_length=4)] = "0") -> Response:
    who.require("templates")
    typed = {"name": name, "language": language, "parameter_count": parameter_count}
    try:
        count = int(parameter_count) if parameter_count.strip().isdigit() else -1
        async with get_database(request).unit_of_work() as session:
            saved = await templates.save_template(session, name=name, language=language, parameter_count=count)
            await accounts.record(session, actor=who.actor, area="channels", action="template saved",
                                  subject=saved.name, details={"language": saved.language,
                                                               "parameter_count": saved.parameter_count})
    except ShopTalkError as error:
        if error.status in (401, 403):
            raise
        return await _page(request, who, status_code=error.status, error=field_error(error), typed=typed)
    return redirect(PAGE, notice=f"Template {saved.name} saved.")


@router.post(PAGE + "/{name}/delete")
async def template_delete(request: Request, who: Editor, name: str) -> Response:
    who.require("templates")
    async with get_database(request).unit_of_work() as session:
        await templates.remove_template(session, name=name)
        await accounts.record(session, actor=who.actor, area="channels", action="template removed",
                              subject=name)
    return redirect(PAGE, notice=f"Template {name} removed.")


# ---- the merchant API ----------------------------------------------------------------------------------

class TemplateIn(BaseModel):
    language: str = Field(min_length=2, max_length=16, examples=["en_US"])
    parameter_count: int = Field(default=0, ge=0, le=templates.MAX_PARAMETERS)


class TemplateOut(BaseModel):
    name: str
    language: str
    parameter_count: int
    registered: bool = Field(description="False: only in the SHOPTALK_WHATSAPP__TEMPLATES setting (the seed).")


def _out(template: templates.Template) -> TemplateOut:
    return TemplateOut(name=template.name, language=template.language, parameter_count=template.parameter_count,
                       registered=not template.seeded)


@api_router.get("/api/v1/merchant/whatsapp-templates", response_model=list[TemplateOut],
                summary="The WhatsApp templates the console may send outside the 24-hour window")
async def api_templates(principal: MerchantDep, session: SessionDep, request: Request) -> list[TemplateOut]:
    return [_out(t) for t in (await templates.registered(session, seed=_seed(request))).values()]


@api_router.put("/api/v1/merchant/whatsapp-templates/{name}", response_model=TemplateOut,
                summary="Register (or change) a WhatsApp template approved by Meta")
async def api_save_template(name: str, body: TemplateIn, principal: MerchantDep, session: SessionDep
                            ) -> TemplateOut:
    saved = await templates.save_template(session, name=name, language=body.language,
                                          parameter_count=body.parameter_count)
    await accounts.record(session, actor=accounts.token_actor(principal.token_id, principal.name),
                          area="channels", action="template saved", subject=saved.name,
                          details={"language": saved.language, "parameter_count": saved.parameter_count})
    return _out(saved)


@api_router.delete("/api/v1/merchant/whatsapp-templates/{name}", status_code=status.HTTP_204_NO_CONTENT,
                   summary="Unregister a WhatsApp template")
async def api_remove_template(name: str, principal: MerchantDep, session: SessionDep) -> Response:
    await templates.remove_template(session, name=name)
    await accounts.record(session, actor=accounts.token_actor(principal.token_id, principal.name),
                          area="channels", action="template removed", subject=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
