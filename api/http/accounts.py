"""Sign-in, the current session and sign-out: one session (an HttpOnly SameSite=Strict cookie) for the agent console
and the back office. JSON at /api/v1/agent/session (the console's, unchanged paths) and forms at
/backoffice/sign-in; both go through `signed_in_response`, so the throttle and the second factor apply to both.

Wrong email or password: one message, whatever was wrong; failures are counted per client and per e-mail in the
shared limiter (Redis when configured, so every process counts them).
"""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from api import accounts
from api.deps import get_database, get_settings_dep
from api.http.agent.console import SESSION_COOKIE
from api.http.agent.console import AccountReader as Reader
from api.http.agent.console import AccountWriter as Writer
from api.throttle import SignInThrottle, client_ip
from bot import handoff
from bot.handoff.errors import WrongCredentials
from bot.handoff.models import Agent

router = APIRouter(tags=["accounts"])


def secret_of(request: Request) -> str:
    return get_settings_dep(request).security.secret_key.get_secret_value()


class SignInBody(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)
    code: str | None = Field(default=None, max_length=12, description="The TOTP code, when the account has one")


class AccountOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    shop_id: int
    available: bool
    permissions: list[str] = Field(description="What the role may do in the back office")


class SessionOut(BaseModel):
    agent: AccountOut
    csrf_token: str


def account_out(agent: Agent) -> AccountOut:
    return AccountOut(id=agent.id, email=agent.email, name=agent.name, role=agent.role, shop_id=agent.shop_id,
                      available=agent.available, permissions=sorted(accounts.PERMISSIONS.get(agent.role, ())))


async def sign_in(request: Request, *, email: str, password: str, code: str | None) -> tuple[Agent, str]:
    """Throttle, check password and second factor, open a session; the caller sets the cookie."""
    ttl = get_settings_dep(request).security.session_ttl_seconds
    throttle = SignInThrottle(request.app)
    ip = client_ip(request)
    await throttle.check(email=email, ip=ip)
    try:
        async with get_database(request).unit_of_work() as session:
            agent, token = await accounts.sign_in(session, email=email, password=password, code=code,
                                                  ttl_seconds=ttl)
    except WrongCredentials:
        await throttle.failed(email=email, ip=ip)
        raise
    await throttle.succeeded(email=email, ip=ip)
    return agent, token


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = get_settings_dep(request)
    response.set_cookie(SESSION_COOKIE, token, max_age=settings.security.session_ttl_seconds, httponly=True,
                        samesite="strict", path="/", secure=settings.environment == "production")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


@router.post("/api/v1/agent/session", response_model=SessionOut, summary="Sign in (agent console and back office)",
             responses={401: {"description": "Wrong email, password or code; or `totp_required`"},
                        429: {"description": "Too many failed sign-ins (Retry-After says for how long)"}})
async def sign_in_json(body: SignInBody, request: Request, response: Response) -> SessionOut:
    agent, token = await sign_in(request, email=body.email, password=body.password, code=body.code)
    set_session_cookie(request, response, token)
    return SessionOut(agent=account_out(agent),
                      csrf_token=handoff.agents.csrf_token(session_token=token, secret=secret_of(request)))


@router.get("/api/v1/agent/session", response_model=SessionOut, summary="Who is signed in (and the CSRF token)")
async def current_session(who: Reader, request: Request) -> SessionOut:
    async with get_database(request).unit_of_work() as session:
        agent = await session.get(Agent, who.agent_id)
        assert agent is not None
        out = account_out(agent)
    return SessionOut(agent=out,
                      csrf_token=handoff.agents.csrf_token(session_token=who.token, secret=secret_of(request)))


@router.delete("/api/v1/agent/session", status_code=204, summary="Sign out")
async def sign_out(who: Writer, request: Request) -> Response:
    async with get_database(request).unit_of_work() as session:
        await handoff.agents.sign_out(session, token=who.token)
    result = Response(status_code=204)
    clear_session_cookie(result)
    return result
