"""The web chat channel: socket frames <-> InboundMessage / OutboundMessage, and live delivery to sockets.

Sessions are minted by the server: a random 128-bit id and its HMAC-SHA256 signature, `<id>.<signature>`
(`WebchatSessions`); the widget keeps the token and sends it back, and a token the server did not sign gets a
new session, so a session id seen elsewhere (a log, the demo data, another shopper) cannot be spoken for.
The conversation's sender_id is the bare id.

Delivery goes to every socket of a session connected to this process; with Redis configured, through pub/sub
so a reply written by any process reaches sockets held by any other. A session that is not connected loses nothing:
its messages are stored and restored from history when the widget reconnects.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from bot.channels import command_payload
from bot.channels.capabilities import Capabilities
from bot.messages import InboundMessage, OutboundMessage
from kit.clock import utcnow
from kit.db import Database
from kit.pubsub import RedisPubSub

log = logging.getLogger(__name__)

SESSION_TOKEN = re.compile(r"^([0-9a-f]{32})\.([A-Za-z0-9_-]{43})$")  # <128-bit id, hex>.<HMAC-SHA256, base64url>
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REDIS_PREFIX = "shoptalk:webchat:"
# The widget draws product cards and any number of buttons itself (the channel contract: nothing degraded).
CAPABILITIES = Capabilities(max_text=100_000, max_buttons=100, button_title=200, images=True, max_caption=100_000,
                            buttons_on_images=True, text_links="url", cards=True)

Frame = dict[str, Any]
SendFrame = Callable[[Frame], Awaitable[None]]


class ClientFrame(BaseModel):
    """What the widget sends: a typed message or a pressed button, each with the widget's own id."""

    type: Literal["message", "button"]
    id: str = Field(min_length=1, max_length=64, pattern=CLIENT_ID.pattern)
    text: str | None = Field(default=None, max_length=100_000)
    payload: str | None = Field(default=None, max_length=1_000)
    locale: str | None = Field(default=None, max_length=16)


class BadFrame(Exception):
    """A frame the widget should not have sent; answered with an error frame, never a crash."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class WebchatSessions:
    """Mints and checks web chat session tokens with a key derived from the shop's secret for this one purpose
    (a token is worth nothing as any other credential, and rotating the secret ends every session)."""

    def __init__(self, secret_key: str) -> None:
        self._key = hmac.new(secret_key.encode(), b"shoptalk webchat-session v1", hashlib.sha256).digest()

    def _signature(self, session_id: str) -> str:
        digest = hmac.new(self._key, session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def mint(self) -> tuple[str, str]:
        """A new session: its id (the conversation's sender_id) and the token the widget keeps."""
        session_id = secrets.token_hex(16)
        return session_id, f"{session_id}.{self._signature(session_id)}"

    def for_customer(self, *, shop: str, customer_id: str) -> tuple[str, str]:
        """A verified customer's own session (same id on every device, derived with our key so nobody can
        guess it from the customer id): its id and token."""
        digest = hmac.new(self._key, f"customer\x00{shop}\x00{customer_id}".encode(), hashlib.sha256).hexdigest()
        session_id = digest[:32]
        return session_id, f"{session_id}.{self._signature(session_id)}"

    def session_of(self, token: str) -> str | None:
        """The session id of a token this server signed; None for anything else (a bare id, a forged or
        foreign signature, the old widget's self-chosen ids)."""
        match = SESSION_TOKEN.match(token)
        if match is None:
            return None
        session_id, signature = match.groups()
        return session_id if hmac.compare_digest(signature, self._signature(session_id)) else None


class IdentifyFrame(BaseModel):
    """The storefront's logged-in customer, signed by its server: {"type": "identify", "shop", "customer_id",
    "email"?, "signature"}; a null customer_id is a log-out (back to a fresh anonymous session)."""

    type: Literal["identify"]
    shop: str = Field(min_length=1, max_length=64)
    customer_id: str | None = Field(default=None, max_length=128)
    email: str | None = Field(default=None, max_length=254)
    signature: str | None = Field(default=None, max_length=128)


def parse_identify_frame(data: dict[str, Any]) -> IdentifyFrame:
    try:
        return IdentifyFrame.model_validate(data)
    except ValidationError as exc:
        raise BadFrame("invalid_frame", "An identify frame needs shop, customer_id and signature.") from exc


def load_frame(raw: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadFrame("malformed_json", "The frame is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise BadFrame("invalid_frame", "A frame is a JSON object.")
    return data


def parse_client_frame(raw: str | dict[str, Any]) -> ClientFrame:
    data = load_frame(raw) if isinstance(raw, str) else raw
    try:
        frame = ClientFrame.model_validate(data)
    except ValidationError as exc:
        raise BadFrame("invalid_frame", "The frame does not match the expected shape.") from exc
    if frame.type == "message" and not (frame.text or "").strip():
        raise BadFrame("empty_message", "A message needs some text.")
    if frame.type == "button" and not frame.payload:
        raise BadFrame("invalid_frame", "A button frame needs a payload.")
    return frame


def to_inbound(session_id: str, frame: ClientFrame) -> InboundMessage:
    metadata: dict[str, Any] = {"client_message_id": frame.id}
    text = frame.text  # the engine reads the first max_message_chars and tells the shopper so
    # Scoped by session, so the widget's own ids never meet another session's.
    message_id = f"{session_id}:{frame.id}"
    if frame.type == "button":
        payload = frame.payload or ""
        return InboundMessage(channel="webchat", sender_id=session_id, message_id=message_id,
                              kind="command" if payload.startswith("/") else "callback", payload=payload, text=text,
                              locale_hint=frame.locale, metadata=metadata, received_at=utcnow())
    command = command_payload(text)
    return InboundMessage(channel="webchat", sender_id=session_id, message_id=message_id,
                          kind="callback" if command else "text", text=text, payload=command,
                          locale_hint=frame.locale, metadata=metadata, received_at=utcnow())


async def agent_names(database: Database, message_ids: Sequence[Any]) -> dict[int, str]:
    """The name of the agent who wrote each of these stored replies (the shopper sees who is talking)."""
    ids = [i for i in message_ids if isinstance(i, int)]
    if not ids:
        return {}
    from bot.handoff.views import ViewRepository  # the handoff package imports the channels; not at import time

    async with database.sessions() as session:
        rows = await ViewRepository(session).replies_by_agent(ids)
    return {message_id: name for message_id, (_, name) in rows.items()}


def reply_frame(message: OutboundMessage) -> Frame:
    return {"type": "reply", "message": message.model_dump(mode="json")}


class WebchatHub:
    """Sockets of this process by session id, plus the Redis fan-out across processes when configured."""

    def __init__(self, redis_url: str | None = None) -> None:
        self.redis_url = redis_url
        self._sockets: dict[str, set[SendFrame]] = {}
        self.pubsub = RedisPubSub(redis_url, name="web chat") if redis_url else None

    def attach(self, session_id: str, send: SendFrame) -> None:
        self._sockets.setdefault(session_id, set()).add(send)

    def detach(self, session_id: str, send: SendFrame) -> None:
        sockets = self._sockets.get(session_id)
        if sockets is not None:
            sockets.discard(send)
            if not sockets:
                del self._sockets[session_id]

    def connected(self, session_id: str) -> int:
        return len(self._sockets.get(session_id, ()))

    async def push_local(self, session_id: str, frame: Frame) -> int:
        delivered = 0
        for send in list(self._sockets.get(session_id, ())):
            try:
                await send(frame)
                delivered += 1
            except Exception:  # a socket closing mid-send; the widget restores from history
                log.info("web chat socket of a session closed during a push")
                self.detach(session_id, send)
        return delivered

    async def publish(self, session_id: str, frame: Frame) -> None:
        """Push to the session's sockets wherever they are connected."""
        if self.pubsub is not None:
            await self.pubsub.publish(REDIS_PREFIX + session_id, json.dumps(frame))
        else:
            await self.push_local(session_id, frame)

    async def run_subscriber(self, ready: asyncio.Event | None = None) -> None:
        """Relay frames published by any process to this process's sockets (runs until cancelled; a lost Redis
        connection is made again, and the widget restores what it missed from history)."""
        if self.pubsub is None:
            return

        async def relay(channel: str, data: str) -> None:
            session_id = channel[len(REDIS_PREFIX):]
            if session_id in self._sockets:
                await self.push_local(session_id, json.loads(data))

        await self.pubsub.listen(relay, patterns=[REDIS_PREFIX + "*"], ready=ready)

    async def close(self) -> None:
        if self.pubsub is not None:
            await self.pubsub.close()
