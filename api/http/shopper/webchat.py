"""The web chat: the page at `/` and its WebSocket at `/ws/chat?session=<token>`.

The server mints sessions: a connection without a token, or with one this server did not sign, gets a new
session and first of all {"type": "session", "token"}, which the widget keeps and sends on every reconnect.
Frames (JSON): the widget sends {"type": "message"|"button", "id", "text"?, "payload"?, "locale"?};
the server answers {"type": "history", "messages"} on connect (and after a resent duplicate; the widget
redraws from it), {"type": "ack", "id", "duplicate"} once a
frame is stored, {"type": "reply", "message"} per reply (carrying its stored message_id), and
{"type": "error", "code", "detail", "id"?} for a frame it refuses.
"""
from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse

from api.chat_runtime import ChatChannels, channels_of
from api.pages import PAGES_DIR
from api.throttle import client_ip, webchat_frame_allowed
from bot.channels.webchat import BadFrame, Frame, parse_client_frame, reply_frame, to_inbound
from kit.errors import ShopTalkError
from kit.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(tags=["web chat"])

PAGES = PAGES_DIR / "webchat"
STATIC = {"widget.js": "text/javascript; charset=utf-8", "widget.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' https: data:; connect-src 'self' ws: wss:; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
HISTORY_LIMIT = 50
CLOSE_TRY_AGAIN = 1013


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def webchat_page() -> FileResponse:
    return FileResponse(PAGES / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/webchat/{name}", include_in_schema=False)
async def webchat_asset(name: str) -> FileResponse:
    if name not in STATIC:
        raise ShopTalkError("No such file.", code="not_found", status=404)
    return FileResponse(PAGES / name, media_type=STATIC[name], headers={"X-Content-Type-Options": "nosniff"})


def history_entry(item: Any) -> Frame:
    """One stored message (the engine's StoredMessage) as the widget shows it, keyed by its stored id."""
    data: dict[str, Any] = item if isinstance(item, dict) else item.model_dump(mode="json")
    mine = data.get("direction") == "in"
    stored_id = data.get("id")
    entry: Frame = {"key": f"in:s{stored_id}" if mine else f"out:{stored_id}",
                    "mine": mine, "text": data.get("text") or data.get("payload") or ""}
    if not mine:
        entry.update(message_id=stored_id, author=data.get("author", "bot"), buttons=data.get("buttons") or [],
                     cards=data.get("cards") or [])
    return entry


async def history_frame(channels: ChatChannels, session_id: str) -> Frame:
    history = await channels.runtime.history(channel="webchat", sender_id=session_id, limit=HISTORY_LIMIT)
    return {"type": "history", "session": session_id, "messages": [history_entry(item) for item in history]}


@router.websocket("/ws/chat")
async def webchat_socket(websocket: WebSocket) -> None:
    channels = channels_of(websocket)
    settings: Settings = websocket.app.state.settings
    session_id = channels.sessions.session_of(websocket.query_params.get("session", ""))
    minted: str | None = None
    if session_id is None:  # no token, or one this server did not sign: a new session, never the named one
        session_id, minted = channels.sessions.mint()
    await websocket.accept()

    async def send(frame: Frame) -> None:
        await websocket.send_json(frame)

    channels.hub.attach(session_id, send)
    try:
        if minted is not None:
            await send({"type": "session", "token": minted})
        await send(await history_frame(channels, session_id))
        while True:
            raw = await websocket.receive_text()
            await _handle_frame(websocket, channels, settings, session_id, raw, send)
    except WebSocketDisconnect:
        pass
    finally:
        channels.hub.detach(session_id, send)


async def _handle_frame(websocket: WebSocket, channels: ChatChannels, settings: Settings, session_id: str, raw: str,
                        send: Any) -> None:
    if len(raw) > settings.limits.max_body_bytes:
        await send({"type": "error", "code": "payload_too_large", "detail": "The frame is too large."})
        return
    try:
        frame = parse_client_frame(raw)
    except BadFrame as exc:
        await send({"type": "error", "code": exc.code, "detail": exc.detail})
        return
    wait = await webchat_frame_allowed(websocket.app, session=session_id, ip=client_ip(websocket))
    if wait is not None:  # nothing stored: the widget shows the message as not sent and the shopper can resend
        await send({"type": "error", "id": frame.id, "code": "too_many_messages",
                    "detail": "Too many messages; please wait a moment.", "retry_after": wait.seconds})
        return
    inbound = to_inbound(session_id, frame)
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
    await send({"type": "ack", "id": frame.id, "duplicate": result.duplicate})
    if result.duplicate:
        # A resend of something stored earlier: the stored history is the truth the widget redraws from.
        await send(await history_frame(channels, session_id))
        return
    for reply in result.replies:
        await channels.hub.push_local(session_id, reply_frame(reply))
