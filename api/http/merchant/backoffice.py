"""The back office: server-rendered Jinja2 pages under /backoffice (plus one small plain-JS file), signed in with
the same session as the agent console. This module holds the shell (sign-in, navigation, errors as pages),
the dashboard, team and invitations, API tokens, two-step sign-in, the audit log and product images;
`backoffice_shop.py` the catalog, stock and orders; `backoffice_faq.py` the FAQ with drafts and review.

Every POST is a form carrying the session's CSRF token; every page checks the role's permission
(`api.accounts.PERMISSIONS`) and answers a 403 page, changing nothing, when it lacks it.
"""
from __future__ import annotations

import typing
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

import knowledge_base as kb
from api import accounts
from api.auth import issue_token, list_tokens, parse_duration, revoke_token, token_status
from api.deps import get_database
from api.http.accounts import clear_session_cookie, secret_of, set_session_cookie, sign_in
from api.http.agent.console import SESSION_COOKIE
from api.pages import PAGES_DIR
from bot import handoff, i18n
from bot import insights as conversation_insights
from bot.handoff.errors import NotSignedIn, SessionExpired
from commerce.money import format_money, quantize
from commerce.orders import service as orders
from commerce.orders.figures import order_figures
from commerce.search import service as search
from kit.clock import as_utc
from kit.errors import InvalidInput, NotFound, ShopTalkError

PAGE_DIR = PAGES_DIR / "backoffice"
templates = Jinja2Templates(directory=str(PAGE_DIR / "templates"))
STATIC = {"backoffice.css": "text/css; charset=utf-8", "backoffice.js": "text/javascript; charset=utf-8"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# (permission, url, label) in the navigation, shown only to roles that have the permission.
NAV = [
    ("dashboard", "/backoffice", "Dashboard"),
    ("catalog", "/backoffice/catalog", "Catalog"),
    ("stock", "/backoffice/stock", "Stock"),
    ("orders", "/backoffice/orders", "Orders"),
    ("shipping", "/backoffice/shipping", "Shipping"),
    ("taxes", "/backoffice/taxes", "Taxes and duties"),
    ("rates", "/backoffice/rates", "Exchange rates"),
    ("channels", "/backoffice/channels", "Sales channels"),
    ("search", "/backoffice/search", "Search"),
    ("faq", "/backoffice/faq", "FAQ"),
    ("insights", "/backoffice/insights", "Insights"),
    ("rules", "/backoffice/rules", "Agents and rules"),
    ("team", "/backoffice/team", "Team"),
    ("tokens", "/backoffice/tokens", "API tokens"),
    ("audit", "/backoffice/audit", "Audit log"),
    ("console", "/agent", "Agent console"),
    ("templates", "/backoffice/whatsapp-templates", "WhatsApp templates"),
]
PAGE_SIZE = 25
DASHBOARD_CAP = 200  # counts on the dashboard stop here (shown as 200+)


class SignInRequired(Exception):
    """A page asked for without a valid session: redirect to the sign-in form (then back)."""


@dataclass(frozen=True)
class Staff:
    """The signed-in account behind the request, as the pages need it."""

    id: int
    name: str
    email: str
    role: str
    shop_id: int
    csrf: str

    @property
    def actor(self) -> str:
        return f"{self.name} <{self.email}>"

    def may(self, permission: str) -> bool:
        return accounts.may(self.role, permission)

    def require(self, permission: str) -> None:
        accounts.require(self.role, permission)


def render(request: Request, template: str, context: Mapping[str, Any], *, status: int = 200,
           who: Staff | None = None) -> HTMLResponse:
    nav = [(url, label) for permission, url, label in NAV if who is not None and who.may(permission)]
    return templates.TemplateResponse(request, template, {"who": who, "nav": nav, "path": request.url.path,
                                                          **context},
                                      status_code=status, headers=HEADERS)


class PageRoute(APIRoute):
    """Errors on back office pages are pages: no session -> the sign-in form; any ShopTalkError (403 for a role
    without the permission, 404, 409, 429...) -> an error page with its status and message."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except (SignInRequired, NotSignedIn, SessionExpired):
                target = request.url.path if request.method == "GET" else "/backoffice"
                return RedirectResponse(f"/backoffice/sign-in?next={quote(target)}", status_code=303)
            except ShopTalkError as error:
                try:  # the navigation too, when the session is fine (a 403 or 404 page of a signed-in person)
                    who: Staff | None = await current_staff(request)
                except (SignInRequired, ShopTalkError):
                    who = None
                response = render(request, "error.html", {"error": error}, status=error.status, who=who)
                if "retry_after" in error.extra:
                    response.headers["Retry-After"] = str(int(error.extra["retry_after"]))
                return response

        return page


router = APIRouter(route_class=PageRoute, include_in_schema=False)


async def current_staff(request: Request) -> Staff:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired
    async with get_database(request).unit_of_work() as session:
        agent = await handoff.agents.agent_for_session(session, token=token)
        return Staff(id=agent.id, name=agent.name, email=agent.email, role=agent.role, shop_id=agent.shop_id,
                     csrf=handoff.agents.csrf_token(session_token=token, secret=secret_of(request)))


async def staff_with_csrf(request: Request) -> Staff:
    """For every form POST: a valid session and its CSRF token in the form (or the X-CSRF-Token header)."""
    who = await current_staff(request)
    form = await request.form()
    given = form.get("csrf_token") or request.headers.get("X-CSRF-Token")
    handoff.agents.check_csrf(session_token=request.cookies.get(SESSION_COOKIE, ""),
                              given=given if isinstance(given, str) else None, secret=secret_of(request))
    return who


Viewer = Annotated[Staff, Depends(current_staff)]
Editor = Annotated[Staff, Depends(staff_with_csrf)]


def redirect(url: str, *, notice: str | None = None) -> RedirectResponse:
    if notice:
        url += ("&" if "?" in url else "?") + "notice=" + quote(notice)
    return RedirectResponse(url, status_code=303)


def field_error(error: ShopTalkError, locale: str | None = None) -> dict[str, Any]:
    """What a form shows for a refused save: the message (in `locale`, the reader's, when the error carries catalog
    words; api.errors.reader_locale) and the field it names."""
    return {"message": i18n.error_text(locale, error), "field": error.extra.get("field"), "code": error.code}


def plain(value: object) -> str:
    """A stored value as a form field shows it: no trailing zeros on amounts (6.5, not 6.500000), '' for None."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def form_dict(raw: Mapping[str, Any]) -> dict[str, str]:
    """The text fields of a submitted form (files and the CSRF token left out); a NUL character is refused."""
    form = {k: v for k, v in raw.items() if isinstance(v, str) and k != "csrf_token"}
    for name, value in form.items():
        if "\x00" in value:
            raise InvalidInput("This field contains the NUL character, which is not accepted.",
                               code="invalid_characters", field=name)
    return form


def invalid(error: ValidationError, *, field_of: typing.Callable[[list[str]], str],
            whole: str = "form") -> InvalidInput:
    """The schema's first complaint as a form error naming the field (`field_of` maps pydantic's location; `whole`
    is the field named by a check of the whole model)."""
    first = error.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    field = field_of(loc) if loc else whole
    message = first.get("msg", "invalid").removeprefix("Value error, ")
    return InvalidInput(f"{field.replace('_', ' ')}: {message}", code="invalid_form", field=field)


def pages(total: int, offset: int) -> dict[str, int | None]:
    return {"total": total, "offset": offset, "prev": max(0, offset - PAGE_SIZE) if offset > 0 else None,
            "next": offset + PAGE_SIZE if offset + PAGE_SIZE < total else None}


# ------------------------------------------------------------------------------------------- sign in

@router.get("/backoffice/static/{name}")
async def static_file(name: str) -> FileResponse:
    if name not in STATIC:
        raise NotFound("No such file.")
    return FileResponse(Path(PAGE_DIR) / name, media_type=STATIC[name], headers={"X-Content-Type-Options": "nosniff",
                                                                                "Cache-Control": "no-cache"})


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/backoffice"


@router.get("/backoffice/sign-in")
async def sign_in_form(request: Request, target: Annotated[str | None, Query(alias="next", max_length=500)] = None
                       ) -> HTMLResponse:
    return render(request, "sign_in.html", {"next": _safe_next(target), "email": "", "need_code": False})


@router.post("/backoffice/sign-in")
async def sign_in_submit(request: Request, email: Annotated[str, Form(max_length=254)],
                         password: Annotated[str, Form(max_length=200)],
                         code: Annotated[str | None, Form(max_length=12)] = None,
                         target: Annotated[str | None, Form(alias="next", max_length=500)] = None) -> Response:
    try:
        _, token = await sign_in(request, email=email, password=password, code=code or None)
    except accounts.SecondFactorRequired as error:
        return render(request, "sign_in.html", {"next": _safe_next(target), "email": email, "need_code": True,
                                                "error": error.detail}, status=401)
    except ShopTalkError as error:
        refused = render(request, "sign_in.html", {"next": _safe_next(target), "email": email,
                                                   "need_code": bool(code), "error": error.detail},
                         status=error.status)
        if "retry_after" in error.extra:
            refused.headers["Retry-After"] = str(int(error.extra["retry_after"]))
        return refused
    response = redirect(_safe_next(target))
    set_session_cookie(request, response, token)
    return response


@router.post("/backoffice/sign-out")
async def sign_out(request: Request, who: Editor) -> Response:
    async with get_database(request).unit_of_work() as session:
        await handoff.agents.sign_out(session, token=request.cookies.get(SESSION_COOKIE, ""))
    response = redirect("/backoffice/sign-in")
    clear_session_cookie(response)
    return response


# ------------------------------------------------------------------------------------------ dashboard

def start_of_today() -> datetime:
    """Midnight UTC today: where the dashboard's "today" and the insights' periods begin."""
    return datetime.combine(datetime.now(UTC).date(), time.min, tzinfo=UTC)


async def _dashboard_figures(session: AsyncSession, who: Staff) -> dict[str, Any]:
    today = start_of_today()
    figures: dict[str, Any] = {"today": await conversation_insights.conversation_figures(session, since=today,
                                                                                         shop_id=who.shop_id)}
    if who.may("orders"):
        figures["orders_today"] = await order_figures(session, since=today)
        to_ship = await orders.list_orders(session, status="paid", limit=DASHBOARD_CAP)
        unpaid = await orders.list_orders(session, status="pending_payment", limit=DASHBOARD_CAP)
        figures["to_ship"], figures["unpaid"] = len(to_ship), len(unpaid)
        waiting: dict[str, Decimal] = {}
        for order in to_ship:
            waiting[order.currency] = waiting.get(order.currency, Decimal(0)) + order.total
        figures["to_ship_value"] = sorted(waiting.items())
    if who.may("search"):
        report = await search.search_report(session, days=1, limit=DASHBOARD_CAP)
        figures["zero_results"] = sum(row.searches for row in report.zero_results)
        figures["zero_queries"] = [row.query for row in report.zero_results[:5]]
    if who.may("faq"):
        figures["awaiting_review"] = len(await kb.awaiting_review(session, limit=DASHBOARD_CAP))
        figures["faq_gaps"] = (await conversation_insights.question_gaps(session, since=today, limit=5)).faq_gaps
        figures["missing_translations"] = len(await kb.missing_translations(session))
    return figures


@router.get("/backoffice")
async def dashboard(request: Request, who: Viewer) -> HTMLResponse:
    who.require("dashboard")
    async with get_database(request).sessions() as session:
        figures = await _dashboard_figures(session, who)
    return render(request, "dashboard.html", {"figures": figures, "notice": request.query_params.get("notice")},
                  who=who)


# ----------------------------------------------------------------------------------------------- team

async def _team_page(request: Request, who: Staff, *, status: int = 200, **extra: Any) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        members = await accounts.team(session, shop_id=who.shop_id)
        invitations = await accounts.pending_invitations(session, shop_id=who.shop_id)
    return render(request, "team.html", {"members": members, "invitations": invitations, "roles": accounts.ROLE_NAMES,
                                         "notice": request.query_params.get("notice"), **extra}, status=status,
                  who=who)


@router.get("/backoffice/team")
async def team(request: Request, who: Viewer) -> HTMLResponse:
    who.require("team")
    return await _team_page(request, who)


@router.post("/backoffice/team/invitations")
async def invite(request: Request, who: Editor, email: Annotated[str, Form(max_length=254)],
                 role: Annotated[str, Form(max_length=20)]) -> Response:
    who.require("team")
    try:
        async with get_database(request).unit_of_work() as session:
            inviter = await handoff.agents.AgentRepository(session).agent(who.id)
            assert inviter is not None
            row, token = await accounts.invite(session, by=inviter, email=email, role=role)
            await accounts.record(session, actor=who.actor, area="team", action="invited",
                                  subject=row.email, details={"role": role})
    except ShopTalkError as error:
        return await _team_page(request, who, status=error.status, error=field_error(error),
                                form={"email": email, "role": role})
    link = str(request.url_for("accept_form", token=token))
    return await _team_page(request, who, invited={"email": row.email, "link": link})


@router.get("/invite/{token}", name="accept_form")
async def accept_form(request: Request, token: str) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        invitation = await accounts.invitation_for(session, token=token)
    return render(request, "invite_accept.html", {"invitation": invitation, "token": token,
                                                  "role": accounts.ROLE_NAMES.get(invitation.role)})


@router.post("/invite/{token}")
async def accept(request: Request, token: str, name: Annotated[str, Form(max_length=120)],
                 password: Annotated[str, Form(max_length=200)]) -> Response:
    try:
        async with get_database(request).unit_of_work() as session:
            agent = await accounts.accept_invitation(session, token=token, name=name, password=password)
            await accounts.record(session, actor=accounts.actor_of(agent), area="team", action="joined",
                                  subject=agent.email, details={"role": agent.role})
    except ShopTalkError as error:
        if error.status != 422:
            raise
        async with get_database(request).sessions() as session:
            invitation = await accounts.invitation_for(session, token=token)
        return render(request, "invite_accept.html", {"invitation": invitation, "token": token, "name": name,
                                                      "role": accounts.ROLE_NAMES.get(invitation.role),
                                                      "error": field_error(error)}, status=422)
    _, session_token = await sign_in(request, email=agent.email, password=password, code=None)
    response = redirect("/backoffice", notice=f"Welcome, {agent.name}.")
    set_session_cookie(request, response, session_token)
    return response


# --------------------------------------------------------------------------------------------- tokens

TOKEN_ROLES = ("merchant", "agent", "channel")  # machines; `admin` tokens stay with the CLI


async def _tokens_page(request: Request, who: Staff, *, status: int = 200, **extra: Any) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        rows = [(row, token_status(row)) for row in await list_tokens(session)]
    return render(request, "tokens.html", {"tokens": rows, "roles": TOKEN_ROLES, **extra}, status=status, who=who)


@router.get("/backoffice/tokens")
async def tokens(request: Request, who: Viewer) -> HTMLResponse:
    who.require("tokens")
    return await _tokens_page(request, who)


@router.post("/backoffice/tokens")
async def create_token(request: Request, who: Editor, name: Annotated[str, Form(max_length=120)],
                       role: Annotated[str, Form(max_length=20)],
                       expires_in: Annotated[str, Form(max_length=12)] = "") -> Response:
    who.require("tokens")
    try:
        if not name.strip():
            raise InvalidInput("Give the token a name (who or what uses it).", code="missing_name",
                                        field="name")
        if role not in TOKEN_ROLES:
            raise InvalidInput(f"role must be one of {', '.join(TOKEN_ROLES)}.", code="unknown_role",
                                        field="role")
        lifetime = parse_duration(expires_in) if expires_in.strip() else None
        async with get_database(request).unit_of_work() as session:
            row, plain = await issue_token(session, name=name.strip(), role=role, expires_in=lifetime)
            await accounts.record(session, actor=who.actor, area="tokens", action="created",
                                  subject=f"token {row.id} ({row.name})", details={"role": role})
    except ShopTalkError as error:
        if "field" not in error.extra and error.code == "invalid_duration":
            error.extra["field"] = "expires_in"
        return await _tokens_page(request, who, status=error.status, error=field_error(error),
                                  form={"name": name, "role": role, "expires_in": expires_in})
    return await _tokens_page(request, who, created={"name": row.name, "token": plain})


@router.post("/backoffice/tokens/{token_id}/revoke")
async def revoke(request: Request, who: Editor, token_id: int) -> Response:
    who.require("tokens")
    async with get_database(request).unit_of_work() as session:
        row = await revoke_token(session, token_id=token_id)
        await accounts.record(session, actor=who.actor, area="tokens", action="revoked",
                              subject=f"token {row.id} ({row.name})")
    return redirect("/backoffice/tokens")


# --------------------------------------------------------------------------------- two-step sign-in

@router.get("/backoffice/security")
async def security(request: Request, who: Viewer) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        factor = await accounts.totp_of(session, account_id=who.id)
    pending = factor is not None and factor.confirmed_at is None
    return render(request, "security.html", {
        "on": factor is not None and factor.confirmed_at is not None, "pending": pending,
        "secret": factor.secret if pending and factor else None,
        "uri": accounts.totp_uri(factor.secret, account=who.email) if pending and factor else None,
        "notice": request.query_params.get("notice")}, who=who)


@router.post("/backoffice/security/totp")
async def totp_start(request: Request, who: Editor) -> Response:
    async with get_database(request).unit_of_work() as session:
        await accounts.start_totp(session, account_id=who.id)
    return redirect("/backoffice/security")


@router.post("/backoffice/security/totp/confirm")
async def totp_confirm(request: Request, who: Editor, code: Annotated[str, Form(max_length=12)]) -> Response:
    async with get_database(request).unit_of_work() as session:
        await accounts.confirm_totp(session, account_id=who.id, code=code)
    return redirect("/backoffice/security", notice="Two-step sign-in is on.")


@router.post("/backoffice/security/totp/off")
async def totp_off(request: Request, who: Editor) -> Response:
    async with get_database(request).unit_of_work() as session:
        await accounts.disable_totp(session, account_id=who.id)
    return redirect("/backoffice/security", notice="Two-step sign-in is off.")


# ------------------------------------------------------------------------------------------ audit log

@router.get("/backoffice/audit")
async def audit(request: Request, who: Viewer, area: str | None = None, offset: int = 0) -> HTMLResponse:
    who.require("audit")
    area = area if area in accounts.AUDIT_AREAS else None
    offset = max(0, offset)
    async with get_database(request).sessions() as session:
        total, events = await accounts.audit_events(session, area=area, limit=PAGE_SIZE, offset=offset)
    return render(request, "audit.html", {"events": events, "areas": accounts.AUDIT_AREAS, "area": area,
                                          "pages": pages(total, offset)}, who=who)


# ------------------------------------------------------------------------------------------- images

@router.get("/media/{name}")
async def media(request: Request, name: str) -> Response:
    stem, _, ext = name.partition(".")
    if not stem.isdigit():
        raise NotFound("No such image.")
    async with get_database(request).sessions() as session:
        row = await accounts.image(session, image_id=int(stem))
    if accounts.IMAGE_TYPES[row.content_type] != ext:
        raise NotFound("No such image.")
    return Response(row.data, media_type=row.content_type,
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=86400",
                             "Content-Security-Policy": "default-src 'none'"})


def fmt_time(value: datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC") if value is not None else "never"


def ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = (datetime.now(UTC) - as_utc(value)).total_seconds()
    if seconds < 90:
        return "just now"
    if seconds < timedelta(hours=2).total_seconds():
        return f"{int(seconds // 60)} min ago"
    if seconds < timedelta(days=2).total_seconds():
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def money(amount: Decimal | None, currency: str) -> str:
    """An amount for people: rounded to the currency's minor unit at this edge, with its symbol."""
    return format_money(amount, currency, "en") if amount is not None else ""


def amount(value: Decimal, currency: str) -> str:
    """An amount as a form field holds it: the currency's decimals, no symbol (so saving it unchanged passes)."""
    return str(quantize(value, currency))


templates.env.filters["when"] = fmt_time
templates.env.filters["amount"] = amount
templates.env.filters["plain"] = plain
templates.env.filters["ago"] = ago
templates.env.filters["money"] = money
