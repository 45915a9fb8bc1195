"""The web chat: the page at `/`, the embeddable messenger (`/widget.js` loader, `/webchat/config`, the framed
`/webchat/frame`) and its WebSocket at `/ws/chat?session=<token>`.

Embedding: the loader asks `/webchat/config?shop=` from the storefront page; only an origin the merchant listed for
that shop gets the config (CORS), any other gets a 403 whose reason the loader prints to the console. The frame's
`frame-ancestors` is the same list, so a page not listed cannot show the chat even without the loader.

The server mints sessions: a connection without a token, or with one this server did not sign, gets a new
session and first of all {"type": "session", "token"}, which the widget keeps and sends on every reconnect.
Frames (JSON): the widget sends {"type": "message"|"button", "id", "text"?, "payload"?, "locale"?} and
{"type": "identify", "shop", "customer_id", "signature"} (a storefront's logged-in customer; null id: log out);
the server answers {"type": "history", "messages"} on connect (and after a resent duplicate; the widget
redraws from it), {"type": "ack", "id", "duplicate"} once a frame is stored, {"type": "typing", "on"} while the
bot works on it, {"type": "reply", "message"} per reply (carrying its stored message_id and, for an agent, the
agent's name), {"type": "identity", "status": "verified"|"refused"|"anonymous", "detail"?}, and
{"type": "error", "code", "detail", "id"?} for a frame it refuses.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import jinja2
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, Field, ValidationError

from api.chat_runtime import ChatChannels, channels_of
from api.errors import PROBLEM_JSON
from api.pages import PAGES_DIR
from api.throttle import client_ip, webchat_frame_allowed
from bot import i18n
from bot.channels import webchat_sites as sites
from bot.channels.source import visit_source
from bot.channels.webchat import (
    BadFrame,
    Frame,
    SendFrame,
    agent_names,
    load_frame,
    parse_client_frame,
    parse_identify_frame,
    reply_frame,
    to_inbound,
)
from kit.errors import InvalidInput, ShopTalkError
from kit.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(tags=["web chat"])

PAGES = PAGES_DIR / "webchat"
LOADER = PAGES_DIR / "widget" / "loader.js"
STATIC = {"widget.js": "text/javascript; charset=utf-8", "widget.css": "text/css; charset=utf-8"}
CSP = ("default-src 'self'; img-src 'self' https: data:; connect-src 'self' ws: wss:; style-src 'self'; "
       "script-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP.format(ancestors="'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
HISTORY_LIMIT = 50
CLOSE_TRY_AGAIN = 1013
CLOSE_POLICY = 1008  # an Origin not allowed, or no auth frame where one was announced
AUTH_TIMEOUT_SECONDS = 10
# The widget's own words, from the catalogs; placeholders stay for the widget to fill.
UI_STRINGS: dict[str, tuple[str, ...]] = {
    "title": (), "open": (), "close": (), "unread": ("count",), "send": (), "message": (), "placeholder": (),
    "language": (), "choose_language": (), "connecting": (), "online": (), "reconnecting": (), "failed": (),
    "typing": ("name",), "assistant": (), "agent": (), "you": (), "agent_joined": ("name",),
    "handed_back": ("name",), "messages": (), "signed_in": (), "no_image": (), "sound": (),
}
LANGUAGE_NAMES = {"en": "English", "zh": "中文", "es": "Español", "ja": "日本語"}


def ui_strings(locale: str) -> dict[str, str]:
    kept: dict[str, Any] = {}
    strings = {}
    for key, names in UI_STRINGS.items():
        kept = {name: "{" + name + "}" for name in names}
        strings[key] = i18n.t(locale, f"webchat.{key}", **kept)
    return strings


# One template for the page at "/" and the framed messenger (the frame adds a close button and the signed-in line).
TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(str(PAGES)), autoescape=True)


def _page(*, framed: bool, ancestors: str = "'none'", shop: str = "") -> HTMLResponse:
    """A widget page with every language's UI strings inlined as JSON data (not script: the CSP runs none)."""
    strings = {language: ui_strings(language) for language in i18n.LANGUAGES}
    data = json.dumps({"strings": strings, "languages": LANGUAGE_NAMES, "shop": shop}, ensure_ascii=False)
    # JSON in a data block is not HTML-unescaped by the browser: kept verbatim, with "<" escaped so it cannot close it.
    html = TEMPLATES.get_template("chat.html").render(framed=framed, data=Markup(data.replace("<", "\\u003c")))
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": CSP.format(ancestors=ancestors),
               "Cache-Control": "no-cache"}
    return HTMLResponse(html, headers=headers)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def webchat_page() -> HTMLResponse:
    return _page(framed=False)


@router.get("/widget.js", include_in_schema=False)
async def widget_loader() -> FileResponse:
    """The one script a storefront adds: `<script src="https://<shop host>/widget.js" data-shop="..." async>`."""
    return FileResponse(LOADER, media_type="text/javascript; charset=utf-8",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=300",
                                 "Cross-Origin-Resource-Policy": "cross-origin"})


def _refusal(status: int, code: str, detail: str, origin: str | None) -> JSONResponse:
    # The refusal is readable by the page that asked, so the loader can say why in the console; it carries no config.
    headers = {"Vary": "Origin"}
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
    return JSONResponse({"type": f"https://shoptalk.dev/problems/{code}", "title": "Web chat refused",
                         "status": status, "code": code, "detail": detail}, status_code=status,
                        media_type=PROBLEM_JSON, headers=headers)


@router.get("/webchat/config", include_in_schema=False)
async def widget_config(request: Request, shop: str = "") -> Response:
    """What the loader needs, for an allowed storefront origin only (CORS)."""
    origin = request.headers.get("origin")
    try:
        async with request.app.state.database.sessions() as session:
            site = await sites.get_site(session, shop=shop)
    except ShopTalkError as exc:
        return _refusal(404 if exc.status == 404 else 422, "webchat_unknown_shop",
                        f"ShopTalk web chat: no shop {shop!r} is set up on this server. {exc.detail}", origin)
    if not sites.origin_allowed(site, origin):
        return _refusal(403, "webchat_origin_not_allowed",
                        f"ShopTalk web chat: the origin {origin or '(none)'} is not in the allowed origins of shop "
                        f"{shop!r}; the merchant adds it with PUT /api/v1/webchat/sites/{shop}.", origin)
    locale = i18n.supported_locale(request.query_params.get("locale")) or i18n.DEFAULT_LOCALE
    body = {"shop": site.shop, "frame_url": str(request.url_for("webchat_frame").include_query_params(shop=shop)),
            "identity_verification": bool(site.identity_secret), "strings": ui_strings(locale),
            "languages": LANGUAGE_NAMES}
    return JSONResponse(body, headers={"Access-Control-Allow-Origin": origin or "", "Vary": "Origin",
                                       "Cache-Control": "no-store"})


@router.get("/webchat/frame", response_class=HTMLResponse, include_in_schema=False, name="webchat_frame")
async def webchat_frame(request: Request, shop: str = "") -> Response:
    """The messenger inside the storefront's iframe; only the shop's allowed origins may frame it."""
    try:
        async with request.app.state.database.sessions() as session:
            site = await sites.get_site(session, shop=shop)
    except ShopTalkError as exc:
        return PlainTextResponse(f"Unknown web chat shop: {exc.detail}", status_code=404, headers=SECURITY_HEADERS)
    ancestors = " ".join(site.allowed_origins) or "'none'"
    return _page(framed=True, ancestors=ancestors, shop=site.shop)


# After /webchat/config and /webchat/frame, which it would otherwise match.
@router.get("/webchat/{name}", include_in_schema=False)
async def webchat_asset(name: str) -> FileResponse:
    if name not in STATIC:
        raise ShopTalkError("No such file.", code="not_found", status=404)
    return FileResponse(PAGES / name, media_type=STATIC[name], headers={"X-Content-Type-Options": "nosniff"})


async def _history_entry(item: Any, names: dict[int, str]) -> Frame:
    """One stored message (the engine's StoredMessage) as the widget shows it, keyed by its stored id."""
    data: dict[str, Any] = item if isinstance(item, dict) else item.model_dump(mode="json")
    mine = data.get("direction") == "in"
    stored_id = data.get("id")
    entry: Frame = {"key": f"in:s{stored_id}" if mine else f"out:{stored_id}", "at": data.get("created_at"),
                    "mine": mine, "text": data.get("text") or data.get("payload") or ""}
    if not mine:
        entry.update(message_id=stored_id, author=data.get("author", "bot"), buttons=data.get("buttons") or [],
                     cards=data.get("cards") or [], custom=data.get("custom"))
        if isinstance(stored_id, int) and stored_id in names:
            entry["agent_name"] = names[stored_id]
    return entry


async def history_frame(channels: ChatChannels, session_id: str) -> Frame:
    history = await channels.runtime.history(channel="webchat", sender_id=session_id, limit=HISTORY_LIMIT)
    agent_ids = [item.id for item in history if getattr(item, "author", None) == "agent"]
    names = await agent_names(channels.runtime.database, agent_ids)
    return {"type": "history", "session": session_id,
            "messages": [await _history_entry(item, names) for item in history]}


@dataclass
class Socket:
    """One widget connection: the session it speaks for (an identify can move it) and its frame sender."""

    websocket: WebSocket
    channels: ChatChannels
    settings: Settings
    session_id: str
    send: SendFrame
    source: dict[str, str] | None = None  # where the shopper came from; kept with the first message it sends

    def move_to(self, session_id: str) -> None:
        self.channels.hub.detach(self.session_id, self.send)
        self.session_id = session_id
        self.channels.hub.attach(session_id, self.send)


def _own_origin(websocket: WebSocket) -> bool:
    """Whether the socket's Origin is this ShopTalk server itself (the page at "/" and the framed chat)."""
    origin = websocket.headers.get("origin") or ""
    host = websocket.headers.get("host") or ""
    try:
        return bool(host) and urlsplit(origin).netloc.lower() == host.lower()
    except ValueError:
        return False


async def _origin_refusal(websocket: WebSocket, channels: ChatChannels, shop: str) -> str | None:
    """Why this socket's Origin may not open the chat, or None. A browser always sends Origin: our own pages and a
    shop's listed storefront origins are allowed, any other page is refused (cross-site socket hijacking). A
    client with no Origin is not a browser page (a native app, a server, a test); it is let in, since it could
    send any Origin it liked and the session token, not the Origin, is what speaks for a shopper."""
    origin = websocket.headers.get("origin")
    if origin is None or _own_origin(websocket):
        return None
    if shop:
        try:
            async with channels.runtime.database.sessions() as session:
                site = await sites.get_site(session, shop=shop)
        except ShopTalkError:
            site = None
        if site is not None and sites.origin_allowed(site, origin):
            return None
    return f"origin {origin[:60]} is not allowed for shop {shop[:40] or '(none)'}"


class Credentials(BaseModel):
    """What speaks for the shopper: their kept session token and, for a storefront's logged-in customer, the signed
    identity. Sent as the socket's first frame {"type": "auth", ...} (so it never lands in an access log) when the
    URL says ?auth=frame; older clients put the same fields in the URL."""

    type: Literal["auth"] = "auth"
    session: str = Field(default="", max_length=128)
    shop: str = Field(default="", max_length=64)
    customer_id: str = Field(default="", max_length=128)
    email: str | None = Field(default=None, max_length=254)
    signature: str = Field(default="", max_length=128)


async def _credentials(websocket: WebSocket) -> Credentials | None:
    params = websocket.query_params
    if params.get("auth") != "frame":
        return Credentials(session=params.get("session", "")[:128], shop=params.get("shop", "")[:64],
                           customer_id=params.get("customer_id", "")[:128], email=params.get("email") or None,
                           signature=params.get("signature", "")[:128])
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), timeout=AUTH_TIMEOUT_SECONDS)
        given = Credentials.model_validate(load_frame(raw[:4096]))
    except (TimeoutError, BadFrame, ValidationError):
        await websocket.close(code=CLOSE_POLICY, reason="the first frame must be {\"type\": \"auth\", ...}")
        return None
    return given.model_copy(update={"shop": given.shop or params.get("shop", "")[:64]})


@router.websocket("/ws/chat")
async def webchat_socket(websocket: WebSocket) -> None:
    channels = channels_of(websocket)
    settings: Settings = websocket.app.state.settings
    refusal = await _origin_refusal(websocket, channels, websocket.query_params.get("shop", "")[:64])
    await websocket.accept()
    if refusal is not None:
        # Accepted only to say why: a page of another origin sees the close code and reason, never a frame.
        log.info("web chat socket refused: %s", refusal)
        await websocket.close(code=CLOSE_POLICY, reason=refusal[:120])
        return
    given = await _credentials(websocket)
    if given is None:
        return
    session_id = channels.sessions.session_of(given.session)
    minted: str | None = None
    identity: Frame | None = None
    if given.customer_id:
        # A storefront's customer, verified before anything is sent: their own session, or (refused) a fresh
        # anonymous one, never the session the token names (it may be a customer's kept on a shared browser).
        customer_session, identity = await _verify(channels, settings, shop=given.shop, customer_id=given.customer_id,
                                                   email=given.email, signature=given.signature)
        session_id = None
        if customer_session is not None:
            session_id, minted = customer_session
    if session_id is None:  # no token, or one this server did not sign: a new session, never the named one
        session_id, minted = channels.sessions.mint()

    async def send(frame: Frame) -> None:
        message = frame.get("message") if frame.get("type") == "reply" else None
        if isinstance(message, dict) and message.get("author") == "agent" and "agent_name" not in message:
            names = await agent_names(channels.runtime.database, [message.get("message_id")])
            if message.get("message_id") in names:
                frame = {**frame, "message": {**message, "agent_name": names[message["message_id"]]}}
        await websocket.send_json(frame)

    sock = Socket(websocket, channels, settings, session_id, send,
                  source=visit_source(websocket.query_params.get("page"), websocket.query_params.get("ref")))
    channels.hub.attach(session_id, send)
    try:
        if minted is not None:
            verified = identity is not None and identity["status"] == "verified"
            await send({"type": "session", "token": minted,
                        **({"customer_id": identity["customer_id"]} if verified and identity else {})})
        if identity is not None:
            await send(identity)
        await send(await history_frame(channels, session_id))
        while True:
            raw = await websocket.receive_text()
            await _handle_frame(sock, raw)
    except WebSocketDisconnect:
        pass
    finally:
        channels.hub.detach(sock.session_id, send)


async def _verify(channels: ChatChannels, settings: Settings, *, shop: str, customer_id: str, email: str | None,
                  signature: str) -> tuple[tuple[str, str] | None, Frame]:
    """(the verified customer's session id and token, or None; the identity frame that says so). A signed e-mail
    links the storefront's orders placed with it to the customer."""
    try:
        async with channels.runtime.database.sessions() as session:
            site = await sites.get_site(session, shop=shop)
    except ShopTalkError:
        site = None
    if site is None or not site.identity_secret:
        return None, {"type": "identity", "status": "refused", "code": "identity_not_enabled",
                      "detail": "This shop has no identity verification secret; the chat stays anonymous."}
    if not sites.identity_verified(site, box=sites.SecretBox.of(settings), customer_id=customer_id, email=email,
                                   signature=signature):
        # Never the customer's conversation: nothing of theirs is shown, the shopper stays anonymous.
        log.info("web chat identity refused for shop %s: bad or missing signature", site.shop)
        return None, {"type": "identity", "status": "refused", "code": "identity_signature_invalid",
                      "detail": "The customer's signature does not verify; the chat stays anonymous."}
    own = channels.sessions.for_customer(shop=site.shop, customer_id=customer_id)
    if email:
        async with channels.runtime.database.unit_of_work() as session:
            await sites.link_verified_email(session, session_id=own[0], email=email)
    return own, {"type": "identity", "status": "verified", "customer_id": customer_id}


async def _identify(sock: Socket, data: dict[str, Any]) -> None:
    """Move the socket to the verified customer's own session, or refuse and leave it where it is (anonymous)."""
    frame = parse_identify_frame(data)
    channels = sock.channels
    if frame.customer_id is None:  # logged out on the storefront: a fresh anonymous conversation
        session_id, token = channels.sessions.mint()
        sock.move_to(session_id)
        await sock.send({"type": "session", "token": token})
        await sock.send({"type": "identity", "status": "anonymous"})
        await sock.send(await history_frame(channels, session_id))
        return
    customer_session, identity = await _verify(channels, sock.settings, shop=frame.shop, customer_id=frame.customer_id,
                                               email=frame.email, signature=frame.signature or "")
    if customer_session is None:
        await sock.send(identity)
        return
    session_id, token = customer_session
    moved = session_id != sock.session_id
    sock.move_to(session_id)
    await sock.send({"type": "session", "token": token, "customer_id": frame.customer_id})
    await sock.send({"type": "identity", "status": "verified", "customer_id": frame.customer_id})
    if moved:  # already there (a reconnect with the customer's kept token): the history was sent on connect
        await sock.send(await history_frame(channels, session_id))


async def _handle_frame(sock: Socket, raw: str) -> None:
    send, settings, channels = sock.send, sock.settings, sock.channels
    if len(raw) > settings.limits.max_body_bytes:
        await send({"type": "error", "code": "payload_too_large", "detail": "The frame is too large."})
        return
    try:
        data = load_frame(raw)
        if data.get("type") == "identify":
            await _identify(sock, data)
            return
        frame = parse_client_frame(data)
    except (BadFrame, InvalidInput) as exc:
        code = exc.code if isinstance(exc, BadFrame) else "invalid_frame"
        await send({"type": "error", "code": code, "detail": exc.detail})
        return
    session_id = sock.session_id
    wait = await webchat_frame_allowed(sock.websocket.app, session=session_id, ip=client_ip(sock.websocket))
    if wait is not None:  # nothing stored: the widget shows the message as not sent and the shopper can resend
        await send({"type": "error", "id": frame.id, "code": "too_many_messages",
                    "detail": "Too many messages; please wait a moment.", "retry_after": wait.seconds})
        return
    inbound = to_inbound(session_id, frame)
    if sock.source is not None:  # the landing page, referrer and UTM parameters, once per connection
        inbound.metadata["source"], sock.source = sock.source, None
    await send({"type": "typing", "on": True})
    try:
        result = await channels.runtime.handle(inbound, delivered_inline=True)
    except ShopTalkError as exc:
        await send({"type": "error", "id": frame.id, "code": exc.code, "detail": exc.detail})
        return
    except Exception:  # never a stack trace to the shopper; the widget marks the message as not sent
        log.exception("web chat message could not be handled")
        await send({"type": "error", "id": frame.id, "code": "internal_error",
                    "detail": "Something went wrong on our side; please try again."})
        return
    finally:
        await send({"type": "typing", "on": False})
    await send({"type": "ack", "id": frame.id, "duplicate": result.duplicate})
    if result.duplicate:
        # A resend of something stored earlier: the stored history is the truth the widget redraws from.
        await send(await history_frame(channels, session_id))
        return
    for reply in result.replies:
        await channels.hub.push_local(session_id, reply_frame(reply))
